"""The dead-letter topic: what could not be processed, with its reason and origin, never dropped.

The record keeps the original bytes so that ``sgb dlq replay`` can re-submit it after a
fix; the reason and origin are also headers so that tools can filter without decoding.
Reasons are sentences about what is wrong, never the values involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from broker.settings import Settings
from broker.wire.codecs import Codecs
from schemas.topics import DLQ_TOPIC


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a dead letter came from: a Kafka position, or a source file position."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    source_name: str | None = None
    position: str | None = None


def dead_letter_record(
    component: str,
    reason: str,
    payload: bytes | None,
    origin: Origin,
    event_id: str | None = None,
    now: datetime | None = None,
    key: bytes | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    """The DeadLetter record (see ``schemas/avro/DeadLetter.avsc``)."""
    return {
        "key": key,
        "content_type": content_type,
        "failed_at": now or datetime.now(UTC),
        "component": component,
        "reason": reason,
        "origin_topic": origin.topic,
        "origin_partition": origin.partition,
        "origin_offset": origin.offset,
        "source_name": origin.source_name,
        "position": origin.position,
        "event_id": event_id,
        "payload": payload,
    }


def source_payload(settings: Settings, payload: bytes | None, reason: str) -> tuple[bytes | None, str]:
    """What a dead letter of a *source* record (a file row, an MLLP message) keeps of its bytes.

    With field encryption on, a child's data must be erasable (``sgb erase``), but a record that
    could not be mapped cannot be sealed with its child's key: its child is what could not be
    read. So its bytes are not kept; its place (file and row, or message id) says where the
    original is: the agency's own file or feed, the system of record. Source dead letters cannot be replayed to a topic in
    any case; the fix is to correct the source and let the connector read it again.

    Returns:
        The payload to keep (None when withheld) and the reason to record.
    """
    if settings.field_encryption != "on" or payload is None:
        return payload, reason
    return None, reason  # the reason and the place (file and row, or message id) are kept


def headers(component: str, reason: str, origin: Origin) -> list[tuple[str, bytes]]:
    """The dead letter's headers: reason and origin, readable without decoding the value."""
    out = [("sgb.component", component.encode()), ("sgb.reason", reason.encode())]
    for name, value in (
        ("origin.topic", origin.topic),
        ("origin.partition", origin.partition),
        ("origin.offset", origin.offset),
        ("source.name", origin.source_name),
        ("source.position", origin.position),
    ):
        if value is not None:
            out.append((f"sgb.{name}", str(value).encode()))
    return out


def send(
    producer: Producer,
    settings: Settings,
    codecs: Codecs,
    *,
    component: str,
    reason: str,
    payload: bytes | None,
    origin: Origin,
    key: bytes | None = None,
    event_id: str | None = None,
    on_delivery: Any = None,
    content_type: str | None = None,
    extra_headers: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Produce one dead letter (inside the caller's transaction, if it has one).

    Args:
        content_type: what the payload is, e.g. ``application/vnd.sgb.avro`` for a Kafka
            message or ``text/csv`` for a source row; replay uses it to know what can be re-sent.
        extra_headers: more headers, e.g. the original message's provenance signature.
    """
    record = dead_letter_record(
        component, reason, payload, origin, event_id, key=key, content_type=content_type
    )
    kwargs: dict[str, Any] = {}
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    producer.produce(
        settings.topic(DLQ_TOPIC),
        key=key,
        value=codecs.dead_letter.encode(record),
        headers=[*headers(component, reason, origin), *extra_headers],
        **kwargs,
    )
