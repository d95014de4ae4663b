"""Hub subscriptions: read one recipient's delivery topic into a sink, exactly as entitled.

Reads ``read_committed``, so only what the filter's transactions committed is seen;
verifies each delivery (it decodes against the registered schema, it is on this hub's own
topic, and its ``sgb.event_id`` and ``sgb.policy_version`` headers are the filter's); with
``SGB_PROVENANCE`` on, refuses a delivery not signed by the filter's key (it is counted and
logged by event id, never written, and does not stop the hub);
writes each batch to the sink and makes it durable before the offsets are committed. Sinks
are idempotent by event id, so a restart after a crash between the two never leaves a
duplicate. For hubs that embed sgb, :meth:`Subscriber.events` is an iterator of
:class:`HubEvent`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_END, KafkaError, KafkaException, Message, TopicPartition

from broker import metrics, tracing
from broker.clients import consumer
from broker.exceptions import SgbError
from broker.hub.delivered import DeliveryRefused, DeliveryRejected, HubEvent, hub_reader, position, verify
from broker.hub.sinks import Sink, SinkUnavailable
from broker.logs import get_logger
from broker.security import provenance
from broker.security.ciphers import Revealer
from broker.settings import Settings
from broker.transactions import next_offsets
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import AUDIENCES, delivery_topic

if TYPE_CHECKING:
    from broker.probes import Health

log = get_logger("broker.hub")

BATCH = 500
# A fetch the broker holds waiting for data returns after at most this long: a delivery made
# visible by a transaction's commit marker is not always what ends the wait (issue 21, item 4).
FETCH = {"fetch.wait.max.ms": 50}
MAX_BACKOFF_S = 30.0


class Subscriber:
    """A hub organisation's subscription to its delivery topic.

    Args:
        settings: how to reach Kafka.
        audience: the audience, for example ``SCHOOL_DSL`` (any case).
        organisation: the organisation code, for example a school URN.
        group_id: the consumer group; ``sgb-hub-<audience>-<organisation>`` by default (after
            the topic prefix, so that deployments sharing a cluster do not share groups). A
            second sink for the same hub needs its own group.
        instance: this process's stable name in the group (static membership), so that a
            restarted subscriber takes its partitions back at once instead of waiting for the
            old session to expire; the host name by default. Two processes sharing a group
            need different names.
    """

    def __init__(
        self,
        settings: Settings,
        audience: str,
        organisation: str,
        group_id: str | None = None,
        instance: str | None = None,
    ) -> None:
        audience = audience.upper()
        if audience not in AUDIENCES:
            msg = f"Audience {audience!r} is not one of {', '.join(AUDIENCES)}."
            raise SgbError(msg)
        self.settings = settings
        self.audience = audience
        self.organisation = organisation
        self.topic = settings.topic(delivery_topic(audience, organisation))
        self.group_id = group_id or settings.topic(f"sgb-hub-{audience.lower()}-{organisation}")
        self.instance = instance or socket.gethostname()
        self.assigned = threading.Event()
        self._assigned_at = 0.0
        self._codecs = Codecs(registry_for(settings, read_only=True))
        self._reader = hub_reader(self._codecs, provenance.for_process(settings), Revealer(settings))
        self.refused: Counter[str] = Counter()  # deliveries refused by provenance, by reason

    def _verify(self, msg: Message) -> HubEvent | None:
        """The delivery, verified and read; None when it fails provenance (then it is counted and
        logged by event id, and never written). Raises :class:`DeliveryRejected` as verify does."""
        try:
            return verify(msg, self._reader, self.audience, self.organisation, self.topic)
        except DeliveryRefused as refused:
            self.refused[refused.rejection.reason.value] += 1
            topic, partition, offset = position(msg)
            log.warning(
                "delivery refused: provenance failed",
                topic=topic,
                partition=partition,
                offset=offset,
                event_id=refused.event_id,
                reason=refused.rejection.reason.value,
                key_id=refused.rejection.key_id,
            )
            return None

    # -- the consumer ----------------------------------------------------------------------
    def _consumer(self, since: datetime | None) -> Any:
        static = {
            "group.instance.id": f"{self.group_id}.{self.instance}",
            "session.timeout.ms": 15000,
            "on_commit": self._committed,
            **FETCH,
        }
        cons = consumer(self.settings, self.group_id, **static)
        try:
            metadata = cons.list_topics(self.topic, timeout=10)
        except KafkaException as exc:
            cons.close()
            msg = f"Kafka at {self.settings.bootstrap} did not answer: {exc.args[0].str()}."
            raise SgbError(msg) from None
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            cons.close()
            msg = (
                f"Delivery topic {self.topic} does not exist: {self.audience} {self.organisation} "
                "is not onboarded (add it to deploy/topics.yaml and run `sgb topics apply`)."
            )
            raise SgbError(msg)
        if since is None:
            cons.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        else:
            millis = int(since.timestamp() * 1000)
            wanted = [TopicPartition(self.topic, p, millis) for p in topic.partitions]
            found = cons.offsets_for_times(wanted, timeout=10)
            cons.assign(
                [
                    TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                    for tp in found
                ]
            )
            self._on_assign(cons, found)
        return cons

    def _idle(self, since: float, timeout: float | None) -> bool:
        """Idle for ``timeout`` seconds; joining the group (up to a minute) does not count as idle."""
        if timeout is None:
            return False
        if not self.assigned.is_set():
            return time.monotonic() - since > timeout + 60
        return time.monotonic() - max(since, self._assigned_at) > timeout

    def _on_assign(self, cons: Any, partitions: list[TopicPartition]) -> None:
        self._assigned_at = time.monotonic()
        self.assigned.set()
        log.info("partitions assigned", topic=self.topic, group=self.group_id, count=len(partitions))

    def _on_revoke(self, cons: Any, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked", topic=self.topic, group=self.group_id, count=len(partitions))

    def _commit(self, cons: Any, messages: Sequence[Message], *, wait: bool = True) -> None:
        """Commit the offsets after ``messages``. ``wait=False`` returns before the broker answers
        (a failure is then logged by :meth:`_committed`): only for messages a sink already holds,
        which a restart reads again and the sink skips, so a lost commit costs nothing."""
        if not messages:
            return
        try:
            cons.commit(offsets=next_offsets(messages), asynchronous=not wait)
        except KafkaException as exc:
            self._commit_failed(exc.args[0].str())

    def _committed(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The answer to an offset commit (served by the next poll)."""
        first = error or next((tp.error for tp in partitions if tp.error is not None), None)
        if first is not None:
            self._commit_failed(first.str())

    def _commit_failed(self, reason: str) -> None:
        # Safe: what was written is re-read after a rebalance and skipped by the sink.
        log.warning(
            "offset commit failed; events will be re-read and skipped as duplicates",
            topic=self.topic,
            reason=reason,
        )

    def _lag(self, cons: Any) -> int | None:
        by_topic = metrics.consumer_lag(cons)
        return None if by_topic is None else sum(by_topic.values())

    # -- the embedding API -----------------------------------------------------------------
    def events(
        self,
        stop: threading.Event | None = None,
        since: datetime | None = None,
        idle_timeout: float | None = None,
    ) -> Iterator[HubEvent]:
        """Yield verified events one by one; each is acknowledged when the next is requested.

        The Python API for hubs that embed sgb: an event is committed only after the caller
        has finished with it and asked for the next, so a crash re-delivers at most the
        event being handled. Stops when ``stop`` is set or after ``idle_timeout`` seconds
        with nothing new; raises :class:`DeliveryRejected` on a delivery that fails verification.
        """
        cons = self._consumer(since)
        idle_since = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                msg = cons.poll(0.5)
                if msg is None:
                    if self._idle(idle_since, idle_timeout):
                        return
                    continue
                if msg.error():
                    continue
                idle_since = time.monotonic()
                event = self._verify(msg)
                if event is not None:
                    yield event
                self._commit(cons, [msg])
        finally:
            cons.close()

    deliveries = events

    # -- the sink loop ---------------------------------------------------------------------
    def run(
        self,
        sink: Sink,
        stop: threading.Event,
        since: datetime | None = None,
        idle_timeout: float | None = None,
        max_events: int | None = None,
        health: Health | None = None,
    ) -> int:
        """Copy deliveries into ``sink`` until stopped; returns how many new events were written.

        Args:
            sink: where events go; closed on return.
            stop: set it to finish the current batch and return.
            since: replay from this time instead of the group's committed offsets.
            idle_timeout: return after this many seconds with nothing new.
            max_events: return once this many new events are written.
            health: marked live each loop and ready while the sink accepts writes.
        """
        cons = self._consumer(since)
        sink_ok = threading.Event()
        sink_ok.set()
        if health is not None:
            health.add_check("assigned", self.assigned.is_set)
            health.add_check("sink", sink_ok.is_set)
        written, attempt = 0, 0
        idle_since = last_lag = time.monotonic()
        log.info("hub subscribed", topic=self.topic, group=self.group_id, sink=sink.kind)
        try:
            while not stop.is_set():
                if health is not None:
                    health.beat()
                messages = self._poll(cons)
                if not messages:
                    if time.monotonic() - last_lag > 5:
                        self._report_lag(cons)
                        last_lag = time.monotonic()
                    if self._idle(idle_since, idle_timeout):
                        break
                    continue
                idle_since = time.monotonic()
                new, rejected = self._write_batch(cons, sink, messages)
                if new is None:
                    attempt += 1
                    sink_ok.clear()
                    stop.wait(min(MAX_BACKOFF_S, 0.5 * 2 ** (attempt - 1)))
                    continue
                attempt = 0
                sink_ok.set()
                written += new
                if rejected is not None:
                    raise rejected
                self._report_lag(cons)
                last_lag = time.monotonic()
                if max_events is not None and written >= max_events:
                    break
        finally:
            cons.close()
            sink.close()
        log.info("hub stopped", topic=self.topic, group=self.group_id, written=written)
        return written

    def _poll(self, cons: Any) -> list[Message]:
        """Wait for the first delivery, then take whatever else has already arrived (up to a
        batch): a quiet hub writes each event at once, a busy one in large batches. Waiting
        for a full batch instead held every event up to the timeout (issue 21, item 4)."""
        first = cons.poll(0.5)
        if first is None:
            return []
        out = []
        for msg in [first, *cons.consume(BATCH - 1, timeout=0)]:
            error = msg.error()
            if error is not None and error.fatal():
                text = (
                    f"The subscription to {self.topic} stopped: {error.str()} (another subscriber with "
                    f"instance name {self.instance} in group {self.group_id} may have replaced it)."
                )
                raise SgbError(text)
            if error is not None:
                log.warning("consumer error", topic=self.topic, reason=error.str())
            else:
                out.append(msg)
        return out

    def _write_batch(
        self, cons: Any, sink: Sink, messages: list[Message]
    ) -> tuple[int | None, DeliveryRejected | None]:
        """The commit path: verify, make durable, then acknowledge exactly what is durable.

        Returns the number of new events (None when the sink failed and the batch will be
        retried) and the verification failure that ended the batch, if any.
        """
        # 1. Verify in order; a delivery that fails ends the batch before it, unacknowledged.
        #    One that fails provenance is refused: acknowledged, never written.
        events: list[HubEvent] = []
        handled: list[Message] = []
        ends: list[int] = []  # ends[i]: how many handled messages event i completes
        rejected = None
        for msg in messages:
            try:
                event = self._verify(msg)
            except DeliveryRejected as exc:
                rejected = exc
                break
            if event is not None:
                events.append(event)
                ends.append(len(handled) + 1)
            handled.append(msg)
        messages = handled
        if not events:
            self._commit(cons, messages, wait=False)
            return 0, rejected
        # 2. Make the batch durable in the sink (fsync, commit, or 2xx for each post).
        began = time.monotonic()
        try:
            with tracing.each_consumed("deliver", messages):  # with tracing on, a span per delivery
                new = sink.write(events)
        except SinkUnavailable as exc:
            # 3'. Acknowledge only the durable prefix; rewind the rest and let the caller back off.
            written = max(0, min(exc.written, len(events)))
            done = ends[written - 1] if written else 0
            self._commit(cons, messages[:done], wait=False)
            self._rewind(cons, messages[done:])
            metrics.record_hub_failure(self.audience, self.organisation, sink.kind)
            log.warning(
                "sink write failed; the batch will be retried",
                topic=self.topic,
                sink=sink.kind,
                reason=str(exc),
                written=written,
                count=len(events) - written,
            )
            return None, None
        metrics.record_hub_write(
            self.audience,
            self.organisation,
            sink.kind,
            written=new,
            duplicates=len(events) - new,
            seconds=time.monotonic() - began,
        )
        # 3. Only now move the offsets: exactly the messages that are durable. Not waiting for
        #    the broker's answer: the next batch is not held up by it (issue 21, item 4).
        self._commit(cons, messages, wait=False)
        log.info(
            "hub wrote",
            topic=self.topic,
            sink=sink.kind,
            count=len(events),
            written=new,
            duplicates=len(events) - new,
        )
        return new, rejected

    def _rewind(self, cons: Any, messages: Sequence[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for m in messages:
            topic, partition, offset = position(m)
            first[(topic, partition)] = min(first.get((topic, partition), offset), offset)
        for (topic, partition), offset in first.items():
            with contextlib.suppress(KafkaException):  # revoked meanwhile: its next owner resumes
                cons.seek(TopicPartition(topic, partition, offset))

    def _report_lag(self, cons: Any) -> None:
        lag = self._lag(cons)
        if lag is not None:
            metrics.set_hub_lag(self.audience, self.organisation, lag)
