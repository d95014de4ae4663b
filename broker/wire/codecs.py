"""Serdes for the project's record types, by name, on one registry."""

from __future__ import annotations

import io
import json
import struct
from functools import cached_property
from typing import Any

import fastavro

import schemas
from broker.exceptions import SerdeError
from broker.wire.audit_codec import AuditCodec
from broker.wire.avro_writer import REFUSALS, compile_writer, long_bytes
from broker.wire.registry import SchemaRegistry
from broker.wire.serde import AvroSerde, _describe
from schemas.jsonform import details_branch
from schemas.loader import _inline as inline

NAMESPACE = "uk.sgb"


def record_serde(registry: SchemaRegistry, name: str) -> AvroSerde:
    """A serde for the top-level record ``name`` (subject: its full name)."""
    return AvroSerde(registry, f"{NAMESPACE}.{name}", schemas.load(name))


class EventSerde:
    """The SafeguardingEvent serde: selects the details branch from the event type.

    Encoding writes the record in three pieces that concatenate to exactly the bytes of
    the whole record (an Avro record is its fields in order): the fields before
    ``details``, the union branch index and that branch's record, then the fields after.
    Writing the 14-branch union directly costs fastavro about four times as much as
    writing the branch it already knows.
    """

    __slots__ = (
        "_branches",
        "_compiled",
        "_head",
        "_head_names",
        "_header",
        "_serde",
        "_tail",
        "_tail_names",
    )

    def __init__(self, registry: SchemaRegistry) -> None:
        self._serde = record_serde(registry, "SafeguardingEvent")
        self._header = struct.pack(">bI", 0, self._serde.schema_id)
        raw = json.loads((schemas.SCHEMA_DIR / "SafeguardingEvent.avsc").read_text(encoding="utf-8"))
        names = [f["name"] for f in raw["fields"]]
        cut = names.index("details")
        details = raw["fields"][cut]
        self._head_names = names[:cut]
        self._tail_names = names[cut + 1 :]
        self._head = _piece("Head", raw["fields"][:cut])
        self._tail = _piece("Tail", raw["fields"][cut + 1 :])
        self._branches = {
            name: (long_bytes(index), fastavro.parse_schema(inline(name, schemas.SCHEMA_DIR, set())))
            for index, name in enumerate(details["type"])
        }
        # The same pieces compiled (broker.wire.avro_writer): an event they refuse goes to fastavro.
        self._compiled = (
            compile_writer(_raw_piece("Head", raw["fields"][:cut])),
            {name: compile_writer(inline(name, schemas.SCHEMA_DIR, set())) for name in details["type"]},
            compile_writer(_raw_piece("Tail", raw["fields"][cut + 1 :])),
        )

    @property
    def schema_id(self) -> int:
        return self._serde.schema_id

    def encode(self, event: dict[str, Any]) -> bytes:
        """Encode an event; its details are written as the branch its event_type names."""
        branch = self._branches.get(details_branch(str(event.get("event_type"))))
        if branch is None:
            msg = "Event has no known event_type to select its details record."
            raise SerdeError(msg)
        index, parsed = branch
        head, branches, tail = self._compiled
        out = bytearray(self._header)
        try:
            head(event, out)
            out += index
            branches[details_branch(str(event.get("event_type")))](event.get("details"), out)
            tail(event, out)
        except REFUSALS:
            pass  # written by fastavro below, which writes the same bytes or says what is wrong
        else:
            return bytes(out)
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self._head, {n: event[n] for n in self._head_names if n in event})
            buf.write(index)
            details = event.get("details")
            if not isinstance(details, dict):
                msg = "Event has no details record."
                raise SerdeError(msg)
            fastavro.schemaless_writer(buf, parsed, details)
            fastavro.schemaless_writer(buf, self._tail, {n: event[n] for n in self._tail_names if n in event})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            msg = f"Record does not match schema uk.sgb.SafeguardingEvent: {_describe(exc)}."
            raise SerdeError(msg) from None
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode a framed event."""
        return self._serde.decode(data)


def _raw_piece(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A record of some of the envelope's fields, self-contained, for writing them in sequence."""
    inlined: set[str] = set()
    return {
        "type": "record",
        "name": f"SafeguardingEvent{name}",
        "namespace": NAMESPACE,
        "fields": [{**f, "type": inline(f["type"], schemas.SCHEMA_DIR, inlined)} for f in fields],
    }


def _piece(name: str, fields: list[dict[str, Any]]) -> Any:
    return fastavro.parse_schema(_raw_piece(name, fields))


class Codecs:
    """Every serde a component needs, registered lazily on first use.

    Args:
        registry: the schema registry in use.
    """

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    @cached_property
    def event(self) -> EventSerde:
        return EventSerde(self.registry)

    @cached_property
    def audit(self) -> AuditCodec:
        return AuditCodec(self.registry)

    @cached_property
    def dead_letter(self) -> AvroSerde:
        return record_serde(self.registry, "DeadLetter")

    @cached_property
    def consent(self) -> AvroSerde:
        return record_serde(self.registry, "ConsentRecord")

    @cached_property
    def status(self) -> AvroSerde:
        return record_serde(self.registry, "ChildStatus")

    @cached_property
    def identity_link(self) -> AvroSerde:
        return record_serde(self.registry, "IdentityLink")

    @cached_property
    def shares(self) -> AvroSerde:
        return record_serde(self.registry, "ShareRecord")
