"""Kafka transaction plumbing shared by transactional consume-transform-produce loops."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from broker.logs import get_logger

log = get_logger("broker.transactions")


def retrying(call: Any, attempts: int = 10) -> None:
    """Run a transactional call, repeating it while Kafka says the error is retriable."""
    for attempt in range(attempts):
        try:
            call()
            return
        except KafkaException as exc:
            if not exc.args[0].retriable() or attempt == attempts - 1:
                raise
            log.warning("transactional call will be retried", reason=exc.args[0].str(), attempt=attempt + 1)
            time.sleep(0.2 * (attempt + 1))


def watermarks(cons: Any, tp: TopicPartition, attempts: int = 20) -> tuple[int, int]:
    """A partition's low and high offsets, retrying while leadership settles."""
    for attempt in range(attempts):
        try:
            low, high = cons.get_watermark_offsets(tp, timeout=10)
            return int(low), int(high)
        except KafkaException as exc:
            if attempt == attempts - 1 or not exc.args[0].retriable() and exc.args[0].code() not in (
                    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE):
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")


def next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``messages``: one past the last of each partition."""
    nxt: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic(), msg.partition())
        nxt[key] = max(nxt.get(key, 0), msg.offset() + 1)
    return [TopicPartition(t, p, o) for (t, p), o in nxt.items()]
