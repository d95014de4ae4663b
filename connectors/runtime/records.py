"""What a connector reads and what its mapping function promises.

A source reader turns a file or a socket into :class:`SourceRecord` values; a mapping
function turns one record into one ``SafeguardingEvent`` dict, or says why it cannot:

* :class:`MappingError`: the record should be an event but is not usable (it goes to the
  dead-letter topic with the reason);
* :class:`NoEvent`: the record is well formed but there is nothing to publish (a FHIR
  Patient read for context, an adult's attendance, an encounter that is not an emergency).

Both reasons are sentences about *what* is wrong, naming columns, fields or segments, and
never contain the record's values, so they can be logged and dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Namespace of the deterministic event ids (uuid5); never change it, or replays stop deduplicating.
EVENT_ID_NAMESPACE = uuid.UUID("5b7f0c8e-2d4a-5e61-9a3b-4c1d2e3f4a5b")
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(EVENT_ID_NAMESPACE, name))``, without building a UUID object (4x faster)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One unit read from a source: a CSV row, a JSON object, a FHIR resource, an HL7 message.

    Args:
        connector: the connector's name (part of the event id, so it must stay stable).
        source: where it was read: a file name relative to the source, or an MLLP endpoint.
        file_id: the identity of the file (a hash of its content), or the endpoint for a socket.
        ordinal: 0-based index among the records of the file; checkpoints count these.
        position: where a person finds it: ``row 12``, ``line 7``, ``entry 3``, ``message ABC1``.
        data: the parsed record, in the reader's shape.
        raw: the original bytes, when the reader has them cheaply.
        content_type: the format of ``raw`` / :meth:`payload`.
        context: what the reader knows around the record (for FHIR: the resources it refers to).
        header: bytes to put before ``raw`` in a dead letter (a CSV header line), so the
            dead letter is a replayable file of one record.
        original: the record as read when ``data`` is a parsed form of it and there are no
            ``raw`` bytes (a Bundle entry); a dead letter keeps it as JSON.
        identity: what the source says makes this record itself, when its position does not
            (an HL7 message: sender, control id, time and a digest of its content); the event
            id is then derived from it, so a resend anywhere gets the same id and a different
            record at a reused position does not.
        raw_of: makes the original bytes when asked, for a reader whose ``raw`` would cost more
            to make than most records ever need (an XML element written back out): only a dead
            letter asks. Used when ``raw`` is None.
    """

    connector: str
    source: str
    file_id: str
    ordinal: int
    position: str
    data: Any
    raw: bytes | None = None
    content_type: str = "application/octet-stream"
    context: Any = None
    header: bytes | None = field(default=None, repr=False)
    original: Any = field(default=None, repr=False)
    identity: str | None = None
    raw_of: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def event_id(self) -> str:
        """The record's event id: the same on every run, so a replay is recognisable downstream."""
        if self.identity is not None:
            return uuid5_text(f"{self.connector}|{self.identity}")
        return uuid5_text(f"{self.connector}|{self.file_id}|{self.position}")

    def payload(self) -> bytes:
        """The bytes a dead letter keeps: the original record, or its JSON when read as an object."""
        raw = self.raw if self.raw is not None or self.raw_of is None else self.raw_of()
        if raw is not None:
            return (self.header or b"") + raw
        source = self.original if self.original is not None else self.data
        return json.dumps(source, sort_keys=True, default=str).encode()


class MapRecord(Protocol):
    """A pure mapping function: one record in, one ``SafeguardingEvent`` dict out.

    Raises :class:`MappingError` when the record cannot be mapped and :class:`NoEvent` when
    it carries nothing to publish. It does no I/O.
    """

    def __call__(self, record: SourceRecord) -> dict[str, Any]: ...


Estimate = Callable[[], int]


@dataclass(frozen=True, slots=True)
class ConnectorParts:
    """What a file connector is made of: how it reads its source, how it maps a record, and
    the format it chose (which names it by default: ``<agency>-<format>``)."""

    reader: Any
    mapper: MapRecord
    format: str
