"""Producer, consumer and admin construction from :class:`Settings`.

Every client gets the connection and security settings from one place, and librdkafka's
own log lines go to a quiet standard-library logger rather than the terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from broker.exceptions import DeliveryError, KafkaUnavailable
from broker.logs import get_logger
from broker.settings import Settings

log = get_logger("broker.clients")
_rdkafka_log = logging.getLogger("librdkafka")
_rdkafka_log.addHandler(logging.NullHandler())
_rdkafka_log.propagate = False


def _base(settings: Settings, extra: dict[str, Any] | None) -> dict[str, Any]:
    config = settings.kafka_config()
    config["logger"] = _rdkafka_log
    # librdkafka leaves Nagle's algorithm on by default (the Java client turns it off): a small
    # request sent while the last is unacknowledged can wait for the peer's delayed ACK. The
    # filter's transaction steps are such requests; bench/transactions.py measured a cycle at
    # p50 17.6 -> 16.5 ms, p99 51.7 -> 45.4 ms with it off (issue 21, item 4).
    config["socket.nagle.disable"] = True
    config.update(extra or {})
    return config


def admin_client(settings: Settings, **extra: Any) -> AdminClient:
    """An admin client for topic and ACL management."""
    return AdminClient(_base(settings, extra))


def producer(settings: Settings, *, transactional_id: str | None = None, **extra: Any) -> Producer:
    """An idempotent producer (``acks=all``); transactional when ``transactional_id`` is given."""
    config = {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    if transactional_id:
        config["transactional.id"] = transactional_id
    config.update(extra)
    return Producer(_base(settings, config))


def consumer(settings: Settings, group_id: str, **extra: Any) -> Consumer:
    """A ``read_committed`` consumer with manual commits, starting at the earliest offset."""
    config = {
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    config.update(extra)
    return Consumer(_base(settings, config))


def raise_for(error: KafkaError | None, what: str) -> None:
    """Re-raise a librdkafka error as sgb's own type."""
    if error is None:
        return
    if error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT):
        msg = f"Kafka is unavailable while {what}: {error.str()}."
        raise KafkaUnavailable(msg)
    msg = f"Kafka refused {what}: {error.str()}."
    raise DeliveryError(msg)


def wait_for_kafka(settings: Settings, stop: threading.Event, *, every: float = 30.0) -> bool:
    """Wait until the cluster answers a metadata request, saying so every ``every`` seconds.

    For long-running processes started before their broker (a pod scheduled first): they
    wait with a sentence instead of failing. Returns False when ``stop`` was set first.
    """
    admin = admin_client(settings)
    said = 0.0
    while not stop.is_set():
        try:
            admin.list_topics(timeout=5)
            return True
        except KafkaException as exc:
            if time.monotonic() - said >= every:
                log.warning(
                    "Kafka not reachable; waiting for it",
                    bootstrap=settings.bootstrap,
                    reason=exc.args[0].str(),
                )
                said = time.monotonic()
        stop.wait(1.0)
    return False


def flush_or_raise(prod: Producer, timeout: float, what: str) -> None:
    """Flush a producer and fail if anything is still unacknowledged after ``timeout``."""
    remaining = prod.flush(timeout)
    if remaining:
        msg = f"Kafka did not acknowledge {remaining} message(s) within {timeout:.0f} s while {what}."
        raise KafkaUnavailable(msg)


__all__ = [
    "KafkaException",
    "admin_client",
    "consumer",
    "flush_or_raise",
    "producer",
    "raise_for",
    "wait_for_kafka",
]
