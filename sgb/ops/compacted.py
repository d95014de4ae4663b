"""Read a compacted topic to its end: its latest records, as ``sgb erase`` needs them."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import TopicPartition

from broker.clients import admin_client, consumer
from broker.exceptions import SgbError
from broker.settings import Settings
from broker.transactions import watermarks


def read_to_end(settings: Settings, logical: str, timeout: float = 60.0) -> list[tuple[bytes, bytes | None]]:
    """Every ``(key, value)`` on every partition of ``logical``, in offset order per partition,
    read to the end it had when reading began (tombstones have a None value; keyless records
    are skipped)."""
    name = settings.topic(logical)
    topic = admin_client(settings).list_topics(name, timeout=10).topics.get(name)
    if topic is None or topic.error is not None:
        msg = f"Topic {name} does not exist; run `sgb topics apply`."
        raise SgbError(msg)
    cons = consumer(settings, f"{settings.topic_prefix}sgb-erase-reader-{uuid.uuid4().hex[:8]}")
    try:
        parts = [TopicPartition(name, p, -2) for p in topic.partitions]
        cons.assign(parts)
        ends = {tp.partition: watermarks(cons, tp)[1] for tp in parts}
        ends = {p: high for p, high in ends.items() if high > 0}
        out: list[tuple[bytes, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in cons.consume(500, timeout=0.5):
                key = message.key()
                if message.error() or not key:
                    continue
                out.append((key, message.value()))
            for tp in cons.position([TopicPartition(name, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
        if ends:
            msg = f"Topic {name} could not be read to its end within {timeout:.0f} s."
            raise SgbError(msg)
        return out
    finally:
        cons.close()
