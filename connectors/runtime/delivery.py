"""The Kafka side of a file connector: records published in transactions, one batch at a time.

Why transactions: a connector's checkpoint lives on local disk and its output in Kafka,
and nothing can update both atomically. With a plain idempotent producer the checkpoint
trails the acknowledgements, and every record acknowledged since the last checkpoint write
is sent again after a crash. Here each batch (events and dead letters alike) is one Kafka
transaction, and the checkpoint is written only after ``commit_transaction`` returns:

* a crash before the commit leaves an open transaction, which the restarted connector
  aborts when it calls ``init_transactions`` with the same transactional id; the batch is
  read and sent again, and ``read_committed`` readers (the filter, hubs) never see the
  aborted copy;
* a crash after the broker committed the transaction but before the checkpoint's rename
  reached the disk re-sends that one batch on restart. This is the remaining window: one
  small write, an fsync and a rename per batch (a few milliseconds every ``batch_size``
  records or half a second). Kafka cannot tell the connector afterwards whether an
  interrupted commit went through, and a connector may not read its own ingress topic to
  find out. The copies carry the same event ids (uuid5 of connector name, file identity
  and position), so they are recognisable downstream: a hub's sink skips an event id it
  already holds. The filter does not dedupe by event id yet, so it would decide the copy again.

Compared with a plain idempotent producer, whose window is every record acknowledged since
the last checkpoint write, the window shrinks to the checkpoint write itself, and nothing
of an unfinished batch is ever visible to ``read_committed`` readers.

Each record's delivery report is tracked: the batch's records count as done only when all
of them were acknowledged and the transaction committed. The restarted connector fences
this one (same transactional id), so two processes can never both publish for one name.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from broker import metrics
from broker.clients import admin_client, consumer, producer
from broker.logs import get_logger
from broker.settings import Settings
from broker.wire import dead_letters as deadletter
from broker.wire.codecs import Codecs
from broker.wire.envelope import Headers, IngressEnvelope
from broker.wire.registry import registry_for
from connectors.exceptions import ConnectorError
from connectors.runtime.checkpoint import FileProgress
from connectors.runtime.event_builder import Finding
from connectors.runtime.records import SourceRecord
from schemas.topics import CHECKPOINTS_TOPIC, DLQ_TOPIC, ingress_topic

log = get_logger("connectors.delivery")

#: Kafka's default message size limit is 1 MB; a dead letter keeps its payload only below this.
MAX_DEAD_LETTER_PAYLOAD = 900_000
#: The content type of a data-quality finding on the dead-letter topic: the event itself was
#: published (with the bad field withheld), so the finding has no payload and is never replayed.
DATA_QUALITY_CONTENT_TYPE = "application/vnd.sgb.data-quality"
#: The reason of every data-quality finding starts with this (``sgb dlq list --reason``).
DATA_QUALITY_PREFIX = "Data quality: "


def check_topics(settings: Settings, topics: list[str], timeout: float = 15.0) -> None:
    """Fail in one sentence unless every topic exists (topics are declared, never auto-created)."""
    try:
        metadata = admin_client(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"Kafka at {settings.bootstrap} did not answer: {exc.args[0].str()}."
        raise ConnectorError(msg) from None
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            msg = f"Topic {topic} does not exist; run `sgb topics apply` first."
            raise ConnectorError(msg)


@dataclass(slots=True)
class _Message:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None
    file_id: str
    ordinal: int


class TransactionalDelivery:
    """Publish events and dead letters for one connector, in transactions.

    Args:
        settings: how to reach Kafka.
        agency: the agency whose ingress topic the events go to.
        name: the connector's name; its transactional id is ``<topic prefix>sgb-connector-<name>``.
        should_stop: polled while Kafka is unavailable, so a stop request is not blocked.
        give_up_s: how long to keep retrying a batch Kafka will not take before failing.
    """

    def __init__(
        self,
        settings: Settings,
        agency: str,
        name: str,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        give_up_s: float = 300.0,
    ) -> None:
        self.settings = settings
        self.agency = agency.upper()
        self.component = f"connector:{agency.lower()}"
        self.topic = settings.topic(ingress_topic(agency))
        self.name = name
        self._checkpoints = settings.topic(CHECKPOINTS_TOPIC)
        self.transactional_id = f"{settings.topic_prefix}sgb-connector-{name}"
        self.codecs = Codecs(registry_for(settings))
        self.should_stop = should_stop
        self.give_up_s = give_up_s
        check_topics(settings, [self.topic, settings.topic(DLQ_TOPIC), self._checkpoints])
        # Registers the schemas before the first transaction; signs with the agency's key when on.
        self._envelope = IngressEnvelope(settings, agency, serde=self.codecs.event)
        self._dead_letters = self.codecs.dead_letter
        self._producer = producer(
            settings,
            transactional_id=self.transactional_id,
            **{"linger.ms": 20, "transaction.timeout.ms": 60000, "batch.num.messages": 10000},
        )
        try:
            # Fences any earlier process with this name and aborts what it left open.
            self._producer.init_transactions(60)
        except KafkaException as exc:
            msg = f"Kafka did not start the connector's transactions: {exc.args[0].str()}."
            raise ConnectorError(msg) from None
        self._batch: list[_Message] = []
        self._done: list[tuple[str, int]] = []
        self._acked = 0
        self._unpolled = 0
        self._failures: list[KafkaError] = []
        self._open = False
        self._outcomes: Counter[str] = Counter()  # of the open batch, counted once it commits
        metrics.start_connector_series(self.agency, self.component)

    # -- one batch -------------------------------------------------------------------------
    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        """Encode ``event`` and add it to the open transaction; raises ``SerdeError`` if it
        does not match the schema (the caller dead-letters the record)."""
        message = self._envelope.wrap(event)
        self._send(
            _Message(
                message.topic, message.key, message.value, message.headers, record.file_id, record.ordinal
            )
        )
        self._outcomes["published"] += 1

    def dead_letter(self, record: SourceRecord, reason: str) -> None:
        """Add a dead letter for ``record`` (its original bytes, position and reason) to the batch."""
        payload: bytes | None = record.payload()
        if payload is not None and len(payload) > MAX_DEAD_LETTER_PAYLOAD:
            payload, reason = None, f"{reason} (The original was too large to keep in the dead letter.)"
        payload, reason = deadletter.source_payload(self.settings, payload, reason)  # erasable
        origin = deadletter.Origin(source_name=record.source, position=record.position)
        record_ = deadletter.dead_letter_record(
            self.component, reason, payload, origin, record.event_id, content_type=record.content_type
        )
        self._send_dead_letter(record, record_, reason, origin)
        self._outcomes["dead_lettered"] += 1

    def data_quality(self, record: SourceRecord, findings: list[Finding], event_id: str) -> None:
        """Add one data-quality finding per withheld field of ``record``'s published event (its id
        ``event_id``, which a snapshot or police connector derives from the fact, not the position)
        to the batch: on the dead-letter topic, with the field's path and reason, never its value."""
        origin = deadletter.Origin(source_name=record.source, position=record.position)
        for finding in findings:
            reason = DATA_QUALITY_PREFIX + finding.sentence()
            record_ = deadletter.dead_letter_record(
                self.component,
                reason,
                None,
                origin,
                event_id,
                content_type=DATA_QUALITY_CONTENT_TYPE,
            )
            self._send_dead_letter(record, record_, reason, origin)

    def _send_dead_letter(
        self, record: SourceRecord, record_: dict[str, Any], reason: str, origin: deadletter.Origin
    ) -> None:
        value = self._dead_letters.encode(record_)
        headers: Headers = list(deadletter.headers(self.component, reason, origin))
        self._send(
            _Message(
                self.settings.topic(DLQ_TOPIC),
                None,
                value,
                headers,
                record.file_id,
                record.ordinal,
            )
        )

    def skip(self, record: SourceRecord) -> None:
        """Count ``record`` as done with this batch, with nothing to publish."""
        self._done.append((record.file_id, record.ordinal))
        self._outcomes["skipped"] += 1

    @property
    def pending(self) -> int:
        """Records in the open batch."""
        return len(self._batch) + len(self._done)

    def positions(self) -> list[tuple[str, int]]:
        """The ``(file_id, ordinal)`` of every record in the open batch."""
        return [(m.file_id, m.ordinal) for m in self._batch if m.file_id] + list(self._done)

    def checkpoint(self, file_id: str, progress: FileProgress) -> None:
        """Put a file's checkpoint in the open batch's transaction (see :func:`committed_checkpoints`)."""
        value = json.dumps({"file": progress.file, "done": progress.done, "complete": progress.complete})
        self._send(
            _Message(self._checkpoints, f"{self.name}/{file_id}".encode(), value.encode(), None, "", -1)
        )

    def commit(self) -> list[tuple[str, int]]:
        """Commit the open batch and return the ``(file_id, ordinal)`` of every record it made
        durable. Retries while Kafka is unavailable; raises :class:`ConnectorError` if it stays
        unavailable for ``give_up_s`` or a stop was requested meanwhile (nothing is then lost:
        the checkpoint has not moved)."""
        if not self._open:
            done, self._done = self._done, []
            self._count_committed()
            return done
        deadline = time.monotonic() + self.give_up_s
        resend = False
        while True:
            try:
                if resend:
                    self._resend()
                    resend = False
                self._producer.commit_transaction(30)
                if self._acked != len(self._batch):  # every record's delivery report must be positive
                    error = self._failures[0] if self._failures else KafkaError(KafkaError._FAIL)
                    self._open = False
                    msg = (
                        f"Kafka committed a batch with {len(self._batch) - self._acked} "
                        "unacknowledged record(s) "
                        f"({error.str()}); stopping so that the checkpoint does not pass them."
                    )
                    raise ConnectorError(msg)
                break
            except KafkaException as exc:
                resend = self._after_failure(exc.args[0], deadline) or resend
        self._open = False
        done = [(m.file_id, m.ordinal) for m in self._batch if m.file_id] + self._done
        self._batch, self._done, self._failures, self._acked = [], [], [], 0
        self._count_committed()
        return done

    def _count_committed(self) -> None:
        for outcome, count in self._outcomes.items():
            metrics.record_connector(self.agency, outcome, count)
        if self._outcomes["dead_lettered"]:
            metrics.record_dead_letter(self.component, self._outcomes["dead_lettered"])
        self._outcomes.clear()

    def close(self) -> None:
        """Abort an uncommitted batch (its records are re-read on the next run) and flush."""
        if self._open:
            with contextlib.suppress(KafkaException):  # the next run's init_transactions aborts it anyway
                self._producer.abort_transaction(10)
            self._open = False
        self._outcomes.clear()
        self._producer.flush(5)

    # -- internals -------------------------------------------------------------------------
    def _send(self, message: _Message) -> None:
        if not self._open:
            self._producer.begin_transaction()
            self._open = True
        self._batch.append(message)
        self._produce(message)

    def _produce(self, m: _Message) -> None:
        while True:
            try:
                self._producer.produce(
                    m.topic, m.value, m.key, headers=m.headers, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._unpolled += 1
        if self._unpolled >= 256:
            self._producer.poll(0)  # serve delivery reports; commit_transaction serves the rest
            self._unpolled = 0

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        """Each record's delivery report: counted, so a batch is done only if all were acknowledged."""
        if error is None:
            self._acked += 1
        else:
            self._failures.append(error)

    def _after_failure(self, error: KafkaError, deadline: float) -> bool:
        """Decide what a failed commit needs: True to abort and send the batch again, False to
        retry the commit as it is. Raises when the connector must stop."""
        if error.fatal():
            msg = (
                f"Kafka stopped this connector's transactions ({error.str()}); another process with the "
                "same --name may have started. Nothing is lost: run it again to resume from the checkpoint."
            )
            raise ConnectorError(msg)
        if time.monotonic() > deadline or self.should_stop():
            if self._open:
                with contextlib.suppress(KafkaException):
                    self._producer.abort_transaction(10)
            self._open = False
            self._batch, self._done, self._failures = [], [], []
            msg = (
                f"Kafka did not accept a batch ({error.str()}); stopped without losing anything: "
                "the checkpoint is unchanged, so the next run sends the batch again."
            )
            raise ConnectorError(msg)
        log.warning("batch not committed; retrying", reason=error.str(), count=len(self._batch))
        time.sleep(1.0)
        return not error.retriable() or error.txn_requires_abort()

    def _resend(self) -> None:
        """Abort the failed transaction and produce the whole batch again in a new one."""
        if self._open:
            self._producer.abort_transaction(30)
            self._open = False
        self._failures, self._acked = [], 0
        self._producer.begin_transaction()
        self._open = True
        for message in self._batch:
            self._produce(message)


def committed_checkpoints(settings: Settings, name: str, timeout: float = 30.0) -> dict[str, FileProgress]:
    """The checkpoints Kafka committed for connector ``name``, by file id (newest wins).

    Read at start, so that a batch committed just before a kill, whose local checkpoint was
    never written, is not sent again.
    """
    topic = settings.topic(CHECKPOINTS_TOPIC)
    prefix = f"{name}/".encode()
    cons = consumer(
        settings, f"{settings.topic_prefix}sgb-connector-{name}-checkpoints", **{"enable.auto.commit": False}
    )
    found: dict[str, FileProgress] = {}
    try:
        meta = cons.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return found
        ends: dict[int, int] = {}
        for partition in meta.partitions:
            low, high = cons.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for msg in cons.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                key = msg.key() or b""
                if key.startswith(prefix):
                    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                        data = json.loads(msg.value() or b"null")
                        found[key[len(prefix) :].decode()] = FileProgress(
                            str(data["file"]), int(data["done"]), bool(data["complete"])
                        )
            for tp in cons.position([TopicPartition(topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
    finally:
        cons.close()
    return found
