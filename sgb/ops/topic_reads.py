"""Reading this deployment's topics from Kafka alone, for the operator commands (``sgb
status``, ``sgb audit trace``, ``sgb dlq``, ``sgb identity``, the demo): each partition's
low and end offsets, every group's committed offsets, and reading partitions from given
offsets to their current end (``read_committed``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from broker.clients import consumer
from broker.exceptions import KafkaUnavailable
from broker.hub.delivered import position
from broker.settings import Settings

Position = tuple[str, int]


def _ours(settings: Settings, name: str) -> bool:
    return name.startswith(settings.topic("sg."))


def partition_ends(settings: Settings, admin: Any, timeout: float = 10.0) -> dict[Position, tuple[int, int]]:
    """(low, end) of every partition of this deployment's topics; end is what read_committed readers see."""
    try:
        topics = admin.list_topics(timeout=timeout).topics
    except KafkaException:
        msg = f"Kafka at {settings.bootstrap} did not answer within {timeout:.0f} s."
        raise KafkaUnavailable(msg) from None
    tps = [TP(name, p) for name, meta in topics.items() if _ours(settings, name) for p in meta.partitions]
    if not tps:
        return {}
    ends = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in tps},  # type: ignore[no-untyped-call]
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=timeout,
    )
    lows = admin.list_offsets(
        {tp: OffsetSpec.earliest() for tp in tps},  # type: ignore[no-untyped-call]
        request_timeout=timeout,
    )
    return {(tp.topic, tp.partition): (lows[tp].result().offset, ends[tp].result().offset) for tp in tps}


def committed_offsets(
    settings: Settings, admin: Any, timeout: float = 10.0
) -> dict[str, dict[Position, int]]:
    """Every consumer group's committed offsets on this deployment's topics (groups with none left out)."""
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=timeout).result().valid]
    futures = {
        g: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=timeout)[g]
        for g in groups
    }
    out: dict[str, dict[Position, int]] = {}
    for group, future in futures.items():
        try:
            found = future.result()
        except KafkaException:
            continue  # a group deleted meanwhile
        offsets = {
            (tp.topic, tp.partition): tp.offset
            for tp in found.topic_partitions or []
            if _ours(settings, tp.topic) and tp.offset >= 0
        }
        if offsets:
            out[group] = offsets
    return out


def read_to_end(
    settings: Settings,
    start: dict[Position, int],
    on_message: Callable[[Message], None],
    timeout: float = 60.0,
) -> None:
    """Read each partition from its start offset to its current end (read_committed), then return."""
    if not start:
        return
    cons = consumer(settings, f"sgb-status-{uuid.uuid4().hex[:12]}", **{"enable.partition.eof": True})
    try:
        cons.assign([TP(t, p, o) for (t, p), o in start.items()])
        pending = set(start)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in cons.consume(1000, timeout=0.5):
                err = msg.error()
                if err is None:
                    on_message(msg)
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(position(msg)[:2])
    finally:
        cons.close()
