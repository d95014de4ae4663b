"""Audit records on the wire: one ``AuditRecord`` per event, and the older ``AuditDecision``.

The filter writes one ``AuditRecord`` per event, carrying every decision on it (POLICY.md
principle 7). It is written in pieces that concatenate to exactly the record's Avro bytes
(an Avro record is its fields in order, an array its blocks): the event's fields, the array
of decisions (each decision's bytes cached, since the same decisions recur), the chain
fields, and last ``record_hash``, which is a hash over the bytes before it. The topic also
keeps ``AuditDecision`` records (one per decision) written before; readers take both through
:meth:`AuditCodec.decisions`, which gives every decision in the older, flat shape.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import fastavro

import schemas
from broker.exceptions import SchemaRegistryError, SerdeError, Unsupported
from broker.wire.avro_writer import compile_record, long_bytes
from broker.wire.registry import SchemaRegistry
from broker.wire.serde import AvroSerde

NAMESPACE = "uk.sgb"
RECORD = "AuditRecord"
LEGACY = "AuditDecision"
#: The fields of an AuditRecord that every one of its decisions shares.
EVENT_FIELDS = (
    "event_id",
    "event_type",
    "policy_version",
    "decided_at",
    "child_identifier",
    "identity_links",
)
CHAIN_FIELDS = ("chain", "sequence", "previous_hash", "record_hash")
# Bounded: organisations make decisions differ, so the cache is dropped when it fills up.
_CACHE_LIMIT = 50_000


def record_writer(schema: dict[str, Any]) -> Callable[[dict[str, Any]], bytes]:
    """The compiled writer of a flat record; fastavro's for anything it does not compile (a
    field added later that holds a record, say), which writes the same bytes, slower."""
    try:
        return compile_record(schema)
    except Unsupported:
        parsed = fastavro.parse_schema(schema)

        def write(record: dict[str, Any]) -> bytes:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, record)
            return buf.getvalue()

        return write


def _part(name: str, fields: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bytes]:
    return record_writer({"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields})


class AuditCodec:
    """Writes AuditRecords in pieces and reads both audit record forms.

    Args:
        registry: where AuditRecord is registered and writer schemas are looked up by id.
    """

    __slots__ = (
        "_chain",
        "_entries",
        "_entry",
        "_entry_names",
        "_event",
        "_header",
        "_legacy",
        "_record",
        "_registry",
    )

    def __init__(self, registry: SchemaRegistry) -> None:
        self._registry = registry
        schema = schemas.load(RECORD)
        self._record = AvroSerde(registry, f"{NAMESPACE}.{RECORD}", schema)
        self._legacy: AvroSerde | None = None
        self._header = struct.pack(">bI", 0, self._record.schema_id)
        fields = schema["fields"]
        names = [f["name"] for f in fields]
        if names[-1] != "record_hash" or names[names.index("decisions") + 1 :] != list(CHAIN_FIELDS):
            msg = "AuditRecord must end with the chain fields, record_hash last (the hash covers the rest)."
            raise SerdeError(msg)
        cut = names.index("decisions")
        entry = fields[cut]["type"]["items"]
        self._event = _part("AuditRecordEvent", fields[:cut])
        self._entry = record_writer(entry)
        self._entry_names = tuple(f["name"] for f in entry["fields"])
        self._chain = _part("AuditRecordChain", fields[cut + 1 : -1])
        self._entries: dict[Any, bytes] = {}

    @property
    def schema_id(self) -> int:
        return self._record.schema_id

    def entry(self, decision: dict[str, Any]) -> bytes:
        """The Avro bytes of one decision (an AuditEntry), cached by its content."""
        try:
            key = tuple(
                tuple(v) if isinstance(v, list) else v for v in (decision.get(n) for n in self._entry_names)
            )
            cached = self._entries.get(key)
        except TypeError:  # a value that cannot be a key: write it every time
            return self._entry(decision)
        if cached is None:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
            cached = self._entries[key] = self._entry(decision)
        return cached

    def body(self, event: dict[str, Any], entries: list[bytes], chain: dict[str, Any]) -> bytes:
        """The Avro bytes of an AuditRecord up to its ``record_hash`` (no framing): ``event``'s
        fields (:data:`EVENT_FIELDS`), the decisions written by :meth:`entry`, ``chain``'s fields."""
        out = bytearray(self._event(event))
        if entries:
            out += long_bytes(len(entries))
            for data in entries:
                out += data
        out.append(0)
        out += self._chain(chain)
        return bytes(out)

    def frame(self, body: bytes, record_hash: str) -> bytes:
        """The message value: framing, ``body`` and the record_hash that closes it."""
        digest = record_hash.encode()
        return self._header + body + long_bytes(len(digest)) + digest

    def encode(self, record: dict[str, Any]) -> bytes:
        """Encode a whole AuditRecord as given (tools and tests; the filter writes in pieces)."""
        return self._record.encode(record)

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """The record in the form it was written: an AuditRecord (with ``decisions``) or an
        older AuditDecision (one decision, flat)."""
        if self._is_legacy(data):
            if self._legacy is None:
                self._legacy = AvroSerde(self._registry, f"{NAMESPACE}.{LEGACY}", schemas.load(LEGACY))
            return self._legacy.decode(data)
        return self._record.decode(data)

    def decisions(self, data: bytes | None) -> list[dict[str, Any]]:
        """Every decision a message carries, each in the flat AuditDecision shape (the event's
        fields and the chain fields repeated on each), whichever form it was written in."""
        return flatten(self.decode(data))

    def _is_legacy(self, data: bytes | None) -> bool:
        if data is None or len(data) < 5 or data[0] != 0:
            return False  # let the decoder say what is wrong
        (schema_id,) = struct.unpack_from(">I", data, 1)
        if schema_id == self._record.schema_id:
            return False
        try:
            name = str(self._registry.schema(schema_id).get("name", ""))
        except SchemaRegistryError:
            return False
        return name.rsplit(".", 1)[-1] == LEGACY


def flatten(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions of a decoded audit record, each flat (AuditDecision's shape)."""
    if "decisions" not in record:
        return [record]
    shared = {name: value for name, value in record.items() if name != "decisions"}
    return [{**shared, **decision} for decision in record["decisions"]]
