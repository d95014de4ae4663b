"""Kafka transaction plumbing shared by transactional consume-transform-produce loops."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
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


def bounded(call: Any, timeout: float, what: str) -> None:
    """Run a blocking client call, but give up on it after ``timeout`` seconds.

    librdkafka's ``send_offsets_to_transaction`` can block far past its own timeout when the
    consumer group's coordinator broker dies (confluentinc/librdkafka#5456 and #5511, open at
    2.16): its coordinator lookup waits for a broker state change that may never come. The
    call runs in a helper thread; if it has not returned in time this raises a non-retriable
    ``_TIMED_OUT`` KafkaException, after which the caller must stop using the producer and
    make a new one under the same transactional id (which fences the stuck one and aborts its
    transaction). The helper thread is left to finish or to die with the process.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, name=f"bounded-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        log.error(
            "Kafka client call did not return in time; the producer will be replaced",
            call=what,
            seconds=timeout,
        )
        raise KafkaException(
            KafkaError(
                KafkaError._TIMED_OUT,
                f"{what} did not return within {timeout:.0f} s",
                fatal=False,
                retriable=False,
                txn_requires_abort=False,
            )
        )
    if outcome[0] is not None:
        raise outcome[0]


def watermarks(cons: Any, tp: TopicPartition, attempts: int = 20) -> tuple[int, int]:
    """A partition's low and high offsets, retrying while leadership settles."""
    for attempt in range(attempts):
        try:
            low, high = cons.get_watermark_offsets(tp, timeout=10)
            return int(low), int(high)
        except KafkaException as exc:
            if attempt == attempts - 1 or (
                not exc.args[0].retriable()
                and exc.args[0].code()
                not in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
            ):
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``messages``: one past the last of each partition."""
    nxt: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (str(msg.topic()), int(msg.partition() or 0))
        nxt[key] = max(nxt.get(key, 0), int(msg.offset() or 0) + 1)
    return [TopicPartition(t, p, o) for (t, p), o in nxt.items()]


def rewind(cons: Any, messages: Sequence[Message]) -> None:
    """Seek each partition of ``messages`` back to its first offset among them, so that a
    batch whose transaction was aborted is consumed again from its start."""
    first: dict[tuple[str, int], int] = {}
    for msg in messages:
        key, offset = (str(msg.topic()), int(msg.partition() or 0)), int(msg.offset() or 0)
        first[key] = min(first.get(key, offset), offset)
    for (topic, partition), offset in first.items():
        # A partition revoked meanwhile: its new owner resumes from the committed offset.
        with contextlib.suppress(KafkaException):
            cons.seek(TopicPartition(topic, partition, offset))
