"""Avro in the Confluent wire framing: magic byte 0, a 4-byte big-endian schema id, Avro binary.

Encoding and decoding use fastavro's schemaless writer and reader on parsed schemas
that are cached per id, so the framing and lookup cost a dictionary hit per message.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro

from broker.exceptions import SchemaRegistryError, SerdeError, Unsupported
from broker.wire.avro_writer import compile_record
from broker.wire.registry import SchemaRegistry

MAGIC = 0
_HEADER = struct.Struct(">bI")


#: What fastavro raises on bytes that are not valid Avro for the schema.
DECODE_ERRORS = (
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    UnicodeDecodeError,
    OverflowError,
    fastavro.read.SchemaResolutionError,
)


class AvroSerde:
    """Encode and decode one record type, framed for Kafka-ecosystem tools.

    Args:
        registry: where the writer schema is registered and reader lookups go.
        subject: the registry subject (sgb uses the record's full name).
        schema: the writer (and reader) schema, as a JSON object.
    """

    __slots__ = ("_fast", "_header", "_parsed", "_readers", "_registry", "schema_id", "subject")

    def __init__(self, registry: SchemaRegistry, subject: str, schema: dict[str, Any]) -> None:
        self._registry = registry
        self.subject = subject
        self._parsed = fastavro.parse_schema(schema)
        self.schema_id = registry.register(subject, schema)
        self._header = _HEADER.pack(MAGIC, self.schema_id)
        self._readers: dict[int, Any] = {self.schema_id: None}
        try:
            self._fast: Any = compile_record(schema)
        except Unsupported:
            self._fast = None

    def encode(self, record: dict[str, Any]) -> bytes:
        """Frame and encode ``record``; raises :class:`SerdeError` naming the bad field."""
        if self._fast is not None:
            try:
                return self._header + bytes(self._fast(record))
            except (KeyError, TypeError, AttributeError, ValueError, OverflowError):
                pass  # let fastavro say precisely what is wrong
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self._parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            msg = f"Record does not match schema {self.subject}: {_describe(exc)}."
            raise SerdeError(msg) from None
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode a framed message into this serde's record shape."""
        if data is None or len(data) < _HEADER.size:
            msg = "Message is too short to carry the Avro framing."
            raise SerdeError(msg)
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            msg = "Message does not start with the Avro magic byte 0 (it is not sgb's Avro framing)."
            raise SerdeError(msg)
        writer = self._writer(schema_id)
        try:
            if writer is None:
                result = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), self._parsed, None)
            else:
                result = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, self._parsed)
        except DECODE_ERRORS as exc:
            msg = (
                f"Message is not valid Avro for schema {self.subject} (id {schema_id}): {type(exc).__name__}."
            )
            raise SerdeError(msg) from None
        if not isinstance(result, dict):
            msg = f"Message decoded to {type(result).__name__}, not a {self.subject} record."
            raise SerdeError(msg)
        return result

    def _writer(self, schema_id: int) -> Any:
        try:
            return self._readers[schema_id]
        except KeyError:
            pass
        try:
            writer = fastavro.parse_schema(self._registry.schema(schema_id))
        except SchemaRegistryError as exc:
            msg = f"Message carries schema id {schema_id}, which cannot be resolved: {exc}"
            raise SerdeError(msg) from None
        self._readers[schema_id] = writer
        return writer


def _describe(exc: Exception) -> str:
    # fastavro's messages can quote the offending value; keep only the field path part.
    text = str(exc)
    if "on field" in text:
        return "invalid value on field " + text.rsplit("on field", 1)[1].strip()
    return type(exc).__name__
