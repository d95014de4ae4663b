"""Reading FHIR R4 files: Bundles (one JSON document) and NDJSON (one resource per line).

Every resource is a record, Patients included: the reader keeps the Patients, Organizations
and Locations it has seen in the file in a bounded map (:class:`FhirContext`), and each
record carries that map as its ``context``, so an Encounter can find the Patient it refers
to when that Patient came earlier in the file. The map holds at most ``patients_in_memory``
of each kind, least recently used out first; a reference to a Patient not in it is a
mapping error (dead-lettered with the reason), never a guess.

A restarted run reads the file from its start (records already done are skipped, not
mapped), so the map is rebuilt exactly as it was.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from connectors.exceptions import SourceFileError
from connectors.health.fhir_model import (
    Location,
    Organization,
    Patient,
    Resource,
    parse_resource,
)
from connectors.runtime.readers import FileRef, Malformed, count_lines, ndjson_lines
from connectors.runtime.records import SourceRecord

CONTENT_TYPE = "application/fhir+json"

T = TypeVar("T")


class Bounded(Generic[T]):
    """A map that forgets its least recently used entries beyond ``limit``."""

    __slots__ = ("_items", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[str, T] = OrderedDict()

    def put(self, key: str, value: T) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.limit:
            self._items.popitem(last=False)

    def get(self, key: str | None) -> T | None:
        if key is None:
            return None
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def __len__(self) -> int:
        return len(self._items)


class FhirContext:
    """The resources of the file so far that others refer to, by reference and by identifier.

    Args:
        limit: most Patients (and, separately, Organizations and Locations) kept.
    """

    __slots__ = ("locations", "organisations", "patients")

    def __init__(self, limit: int) -> None:
        # Each patient is stored under up to three keys (Type/id, fullUrl, NHS number).
        self.patients: Bounded[Patient] = Bounded(limit * 3)
        self.organisations: Bounded[Organization] = Bounded(limit)
        self.locations: Bounded[Location] = Bounded(limit)

    def add(self, resource: Resource, full_url: str | None) -> None:
        """Remember a resource other records may refer to."""
        keys = [resource.label] + ([full_url] if full_url else [])
        if isinstance(resource, Patient):
            nhs = resource.nhs_number()
            for key in keys + ([f"nhs:{nhs.replace(' ', '')}"] if nhs else []):
                self.patients.put(key, resource)
        elif isinstance(resource, Organization):
            for key in keys:
                self.organisations.put(key, resource)
        elif isinstance(resource, Location):
            for key in keys:
                self.locations.put(key, resource)


class FhirReader:
    """FHIR R4 Bundles (``.json``) and NDJSON (``.ndjson``, ``.jsonl``).

    Positions are ``line N`` in NDJSON and ``entry N`` (1-based) in a Bundle.

    Args:
        patients_in_memory: the bound of the per-file map of resources others refer to.
    """

    suffixes: tuple[str, ...] = (".json", ".ndjson", ".jsonl")

    def __init__(self, patients_in_memory: int = 100_000) -> None:
        self.patients_in_memory = patients_in_memory

    def estimate(self, path: Path) -> int:
        return count_lines(path) if path.name.lower().endswith((".ndjson", ".jsonl")) else 0

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        context = FhirContext(self.patients_in_memory)
        if ref.path.name.lower().endswith((".ndjson", ".jsonl")):
            for ordinal, lineno, line in ndjson_lines(ref):
                yield self._record(ref, ordinal, f"line {lineno}", _loads(line), line, None, context)
            return
        try:
            document = json.loads(ref.path.read_bytes())
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            msg = f"File {ref.source} is not a valid JSON document."
            raise SourceFileError(msg) from None
        if not isinstance(document, dict):
            msg = f"File {ref.source} is not a FHIR resource or Bundle."
            raise SourceFileError(msg)
        if document.get("resourceType") != "Bundle":
            yield self._record(ref, 0, "entry 1", document, None, None, context)
            return
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            msg = f"File {ref.source} is a Bundle whose entry is not a list."
            raise SourceFileError(msg)
        for ordinal, entry in enumerate(entries):
            entry = entry if isinstance(entry, dict) else {}
            full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            data = entry.get("resource", Malformed("The Bundle entry has no resource."))
            yield self._record(ref, ordinal, f"entry {ordinal + 1}", data, None, full_url, context, entry)

    @staticmethod
    def _record(
        ref: FileRef,
        ordinal: int,
        position: str,
        data: Any,
        raw: bytes | None,
        full_url: str | None,
        context: FhirContext,
        entry: Any = None,
    ) -> SourceRecord:
        parsed: Any = data
        if not isinstance(data, Malformed):
            try:
                parsed = parse_resource(data)
            except ValueError as exc:
                parsed = Malformed(str(exc))
            else:
                context.add(parsed, full_url)
        return SourceRecord(
            ref.connector,
            ref.source,
            ref.file_id,
            ordinal,
            position,
            parsed,
            raw,
            CONTENT_TYPE,
            context,
            original=None if raw is not None else (entry if isinstance(data, Malformed) else data),
        )


_NOT_JSON = Malformed("The line is not valid JSON.")


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return _NOT_JSON
