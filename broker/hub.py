"""Hub subscriptions: read one recipient's delivery topic into a sink, exactly as entitled.

Reads ``read_committed``; writes each batch to the sink and makes it durable before the
offsets are committed; skips event ids the sink already holds, so a restart after a
crash between the two never leaves a duplicate.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import OFFSET_END, KafkaException, Message, TopicPartition

from broker.clients import consumer
from broker.codecs import Codecs
from broker.exceptions import SerdeError, SgbError
from broker.logs import get_logger
from broker.registry import registry_for
from broker.settings import Settings
from broker.topics import AUDIENCES, delivery_topic
from schemas.jsonform import to_json

log = get_logger("broker.hub")


class Sink(Protocol):
    """Where a hub's people work. ``write`` returns only once the events are durable."""

    def contains(self, event_id: str) -> bool: ...

    def write(self, events: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON object per line, appended and fsynced; idempotent by event id.

    Args:
        path: the file (created with its folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ids: set[str] = set()
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if line:
                        try:
                            self._ids.add(json.loads(line)["event_id"])
                        except (ValueError, KeyError):
                            continue  # a torn last line from a crash: its event is re-delivered
        self._fh = path.open("a", encoding="utf-8")

    def contains(self, event_id: str) -> bool:
        return event_id in self._ids

    def write(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._fh.write(json.dumps(to_json(event), sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._ids.update(e["event_id"] for e in events)

    def close(self) -> None:
        self._fh.close()


def open_sink(spec: str) -> Sink:
    """A sink from its command-line form, ``jsonl:PATH``."""
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        msg = f"Sink {spec!r} must be KIND:TARGET, for example jsonl:/var/lib/hub/inbox.jsonl."
        raise SgbError(msg)
    if kind == "jsonl":
        return JsonlSink(Path(target))
    msg = f"Sink kind {kind!r} is not supported; use jsonl:PATH."
    raise SgbError(msg)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as a hub receives it, with where it came from."""

    event: dict[str, Any]
    topic: str
    partition: int
    offset: int
    policy_version: str | None


class Subscriber:
    """A hub organisation's subscription to its delivery topic.

    Args:
        settings: how to reach Kafka.
        audience: the audience, for example ``SCHOOL_DSL`` (any case).
        organisation: the organisation code, for example a school URN.
        group_id: the consumer group; one per hub organisation and sink by default.
    """

    def __init__(self, settings: Settings, audience: str, organisation: str, group_id: str | None = None) -> None:
        audience = audience.upper()
        if audience not in AUDIENCES:
            msg = f"Audience {audience!r} is not one of {', '.join(AUDIENCES)}."
            raise SgbError(msg)
        self.settings = settings
        self.audience = audience
        self.organisation = organisation
        self.topic = settings.topic(delivery_topic(audience, organisation))
        self.group_id = group_id or f"sgb-hub-{audience.lower()}-{organisation}"
        self._codecs = Codecs(registry_for(settings))

    def _consumer(self, since: datetime | None) -> Any:
        cons = consumer(self.settings, self.group_id)
        metadata = cons.list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            cons.close()
            msg = (f"Delivery topic {self.topic} does not exist: {self.audience} {self.organisation} "
                   "is not onboarded (add it to deploy/topics.yaml and run `sgb topics apply`).")
            raise SgbError(msg)
        if since is None:
            cons.subscribe([self.topic])
        else:
            millis = int(since.timestamp() * 1000)
            wanted = [TopicPartition(self.topic, p, millis) for p in topic.partitions]
            found = cons.offsets_for_times(wanted, timeout=10)
            cons.assign([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                         for tp in found])
        return cons

    def deliveries(self, stop: threading.Event | None = None, since: datetime | None = None,
                   idle_timeout: float | None = None) -> Iterator[Delivery]:
        """Yield deliveries one by one; each offset is committed when the next is requested.

        The Python API for hubs that embed sgb: the event is acknowledged only after the
        caller has finished with it and asked for the next.
        """
        cons = self._consumer(since)
        idle_since = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                msg = cons.poll(0.5)
                if msg is None:
                    if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                        return
                    continue
                if msg.error():
                    continue
                idle_since = time.monotonic()
                yield self._delivery(msg)
                cons.commit(message=msg, asynchronous=False)
        finally:
            cons.close()

    def _delivery(self, msg: Message) -> Delivery:
        try:
            event = self._codecs.event.decode(msg.value())
        except SerdeError as exc:
            text = (f"Delivery at {msg.topic()}[{msg.partition()}]@{msg.offset()} cannot be decoded and is not "
                    f"acknowledged: {exc}")
            raise SgbError(text) from None
        headers = dict(msg.headers() or [])
        version = headers.get("sgb.policy_version")
        return Delivery(event, msg.topic(), msg.partition(), msg.offset(), version.decode() if version else None)

    def run(self, sink: Sink, stop: threading.Event, since: datetime | None = None,
            idle_timeout: float | None = None, max_events: int | None = None) -> int:
        """Copy deliveries into ``sink`` until stopped; returns how many were written."""
        cons = self._consumer(since)
        written = 0
        idle_since = time.monotonic()
        log.info("hub subscribed", topic=self.topic, group=self.group_id)
        try:
            while not stop.is_set():
                messages = [m for m in cons.consume(500, timeout=0.5) if not m.error()]
                if not messages:
                    if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                        break
                    continue
                idle_since = time.monotonic()
                fresh = []
                for msg in messages:
                    event = self._delivery(msg).event
                    if not sink.contains(event["event_id"]) and all(
                        e["event_id"] != event["event_id"] for e in fresh
                    ):
                        fresh.append(event)
                if fresh:
                    sink.write(fresh)  # durable before the offsets move
                written += len(fresh)
                try:
                    cons.commit(asynchronous=False)
                except KafkaException as exc:
                    log.warning("offset commit failed; events may be re-read and skipped as duplicates",
                                reason=exc.args[0].str())
                log.info("hub wrote", topic=self.topic, count=len(fresh), delivered=written)
                if max_events is not None and written >= max_events:
                    break
        finally:
            cons.close()
            sink.close()
        return written
