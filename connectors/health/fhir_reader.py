"""Reading FHIR R4 files: Bundles (one JSON or XML document), single resources, NDJSON (one
resource per line) and Bulk Data ``$export`` folders (one NDJSON file per resource type,
with or without the manifest).

Every resource is a record, Patients included. The reader keeps the Patients,
Organizations and Locations others refer to in a bounded map (:class:`FhirContext`), by
``Type/id``, ``fullUrl``, NHS number and every other identifier, and each record carries
that map as its ``context``. References resolve whatever the order:

* a Bundle is read whole before its first record is yielded (it is in memory anyway);
* NDJSON files are first scanned for the kinds others refer to, every file of the folder
  (a Bulk Data export) before the first record of any, so an Encounter finds its Patient in
  ``Patient.ndjson`` or later in its own file; only those lines are parsed in the scan.

The map holds at most ``patients_in_memory`` Patients (and as many Organizations and
Locations), least recently used out first: memory stays bounded however large the export;
a reference to a Patient not in it is a mapping error (dead-lettered with the reason),
never a guess. A Bundle entry with a request and no resource (a batch or transaction of
requests) and an export's manifest are read as :class:`Unused` and counted as not used.

A restarted run reads the files from their start (records already done are skipped, not
mapped), so the map is rebuilt exactly as it was.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
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
from connectors.health.fhir_xml import parse_xml
from connectors.runtime.readers import FileRef, Malformed, count_lines, ndjson_lines
from connectors.runtime.records import SourceRecord

CONTENT_TYPE = "application/fhir+json"
_NDJSON = (".ndjson", ".jsonl")
#: A line of a kind other resources refer to, found without parsing the line.
_REFERRED = re.compile(rb'"resourceType"\s*:\s*"(?:Patient|Organization|Location)"')


@dataclass(frozen=True, slots=True)
class Unused:
    """Something read that carries no resource to map, and why: a Bundle entry that is only a
    request (batch or transaction), a Bulk Data export manifest."""

    reason: str


REQUEST_ONLY = Unused("The Bundle entry is a request with no resource (a batch or transaction).")
MANIFEST = Unused("The file is a Bulk Data export manifest; the files of the export are read themselves.")


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
        # Each patient is stored under a few keys (Type/id, fullUrl, NHS number, identifiers).
        self.patients: Bounded[Patient] = Bounded(limit * 4)
        self.organisations: Bounded[Organization] = Bounded(limit)
        self.locations: Bounded[Location] = Bounded(limit)

    def add(self, resource: Resource, full_url: str | None) -> None:
        """Remember a resource other records may refer to."""
        keys = [resource.label] + ([full_url] if full_url else [])
        if isinstance(resource, Patient):
            nhs = resource.nhs_number()
            keys += [f"nhs:{nhs}"] if nhs else []
            keys += [f"id:{i.system}|{i.value}" for i in resource.identifier if i.system and i.value]
            for key in keys:
                self.patients.put(key, resource)
        elif isinstance(resource, Organization):
            for key in keys:
                self.organisations.put(key, resource)
        elif isinstance(resource, Location):
            for key in keys:
                self.locations.put(key, resource)


class FhirReader:
    """FHIR R4 Bundles and resources (``.json``, ``.xml``), NDJSON (``.ndjson``, ``.jsonl``) and
    folders of them (a Bulk Data export).

    Positions are ``line N`` in NDJSON and ``entry N`` (1-based) in a Bundle.

    Args:
        patients_in_memory: the bound of the map of resources others refer to.
    """

    suffixes: tuple[str, ...] = (".json", ".ndjson", ".jsonl", ".xml")

    def __init__(self, patients_in_memory: int = 100_000) -> None:
        self.patients_in_memory = patients_in_memory
        self._folders: dict[Path, tuple[FhirContext, set[Path]]] = {}

    def estimate(self, path: Path) -> int:
        return count_lines(path) if path.name.lower().endswith(_NDJSON) else 0

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        name = ref.path.name.lower()
        if name.endswith(_NDJSON):
            context = self._folder_context(ref.path)
            for ordinal, lineno, line in ndjson_lines(ref):
                yield self._record(ref, ordinal, f"line {lineno}", _loads(line), line, None, context)
            return
        context = FhirContext(self.patients_in_memory)
        document = self._document(ref, name.endswith(".xml"))
        if "resourceType" not in document and isinstance(document.get("output"), list):
            yield SourceRecord(
                ref.connector, ref.source, ref.file_id, 0, "manifest", MANIFEST, None, CONTENT_TYPE
            )
            return
        if document.get("resourceType") != "Bundle":
            yield self._record(ref, 0, "entry 1", document, None, None, context)
            return
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            msg = f"File {ref.source} is a Bundle whose entry is not a list."
            raise SourceFileError(msg)
        # The whole Bundle first, so that an entry may refer to one after it.
        parsed = [_entry(entry, context) for entry in entries]
        for ordinal, (entry, data, _full_url) in enumerate(parsed):
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                f"entry {ordinal + 1}",
                data,
                None,
                CONTENT_TYPE,
                context,
                original=entry if isinstance(data, (Malformed, Unused)) else entry.get("resource"),
            )

    def _document(self, ref: FileRef, xml: bool) -> dict[str, Any]:
        data = ref.path.read_bytes()
        try:
            document = parse_xml(data) if xml else json.loads(data)
        except ValueError as exc:
            reason = str(exc) if xml else "not a valid JSON document"
            msg = f"File {ref.source}: {reason.rstrip('.')}."
            raise SourceFileError(msg) from None
        except RecursionError:  # nested too deep
            msg = f"File {ref.source} is nested too deeply to be a FHIR document."
            raise SourceFileError(msg) from None
        if not isinstance(document, dict):
            msg = f"File {ref.source} is not a FHIR resource or Bundle."
            raise SourceFileError(msg)
        return document

    def _folder_context(self, path: Path) -> FhirContext:
        """The map shared by the NDJSON files of one folder, with every file scanned once."""
        folder = path.parent
        if folder not in self._folders:
            self._folders[folder] = (FhirContext(self.patients_in_memory), set())
        context, scanned = self._folders[folder]
        siblings = sorted(p for p in folder.iterdir() if p.name.lower().endswith(_NDJSON))
        for sibling in [*(p for p in siblings if p != path), path]:
            if sibling not in scanned:
                scanned.add(sibling)
                _scan(sibling, context)
        return context

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


def _scan(path: Path, context: FhirContext) -> None:
    """Add the Patients, Organizations and Locations of an NDJSON file to the map."""
    try:
        with path.open("rb") as fh:
            for line in fh:
                if _REFERRED.search(line) is None:
                    continue
                data = _loads(line)
                if isinstance(data, Malformed):
                    continue
                try:
                    context.add(parse_resource(data), None)
                except ValueError:
                    continue  # its own record says why, when the file is read
    except OSError:
        return  # the file itself reports it when read


def _entry(entry: Any, context: FhirContext) -> tuple[Any, Any, str | None]:
    """(entry, parsed resource or why not, fullUrl) for one Bundle entry, its resource remembered."""
    entry = entry if isinstance(entry, dict) else {}
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    if "resource" not in entry:
        if isinstance(entry.get("request"), dict):
            return entry, REQUEST_ONLY, full_url
        return entry, Malformed("The Bundle entry has no resource."), full_url
    try:
        parsed = parse_resource(entry["resource"])
    except ValueError as exc:
        return entry, Malformed(str(exc)), full_url
    context.add(parsed, full_url)
    return entry, parsed, full_url
