"""The filter's view of the compacted state topics, read as a global table.

Every filter process reads all of ``sg.consent.v1``, ``sg.status.v1`` and the share ledger
``sg.shares.v1`` into its own state store, so any process can decide any child. It reads them to their end before the
first decision, then drains what has arrived before each batch. Read positions are kept
in the store, so a restart resumes and a fresh store is rebuilt from the beginning.
"""

from __future__ import annotations

import time
from collections import Counter
from functools import cached_property
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

import schemas
from broker.clients import admin_client, consumer, producer
from broker.exceptions import SerdeError
from broker.logs import get_logger
from broker.security.ciphers import child_namer
from broker.settings import Settings
from broker.transactions import watermarks
from broker.wire.codecs import Codecs
from consent import state_updates as status
from consent.filter.identity import FilterIdentity
from consent.filter.shares import apply_read_back
from consent.filter.store import StateStore, consent_row
from consent.state import ChildState
from consent.state_codec import StateRecordReader
from schemas.child_keys import consent_child_key, consent_key
from schemas.topics import CONSENT_TOPIC, IDENTITY_LINKS_TOPIC, SHARES_TOPIC, STATUS_TOPIC

log = get_logger("consent.filter")
#: State records applied between two store commits while catching up (bounds memory). A commit
#: writes every B-tree page its chunk touches: in a national store's random key order 100,000
#: records a chunk took 27 CPU s against 38 for 20,000 at a million children (30 MB more resident).
CHUNK = 100_000
#: State records taken from the consumer at once while catching up: each batch's children are
#: loaded from the store in one go (the cache holds 50,000).
BATCH = 5000
_CONSENT, _STATUS, _SHARES, _LINK = "consent", "status", "shares", "link"


class StateReader:
    """Applies consent and status records to a state store.

    Args:
        settings: how to reach Kafka.
        store: where per-child state and the read positions live.
        codecs: the serdes for consent and status records.
        counts: the filter's counters (consent records seen and re-published are added).
        group_id: the filter's group; this reader's consumer is named after it (it commits no offsets).
        identity: the child index, which reads the link topic from its start at every start.
    """

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        codecs: Codecs,
        counts: Counter[str],
        group_id: str,
        identity: FilterIdentity | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._codecs = codecs
        self._counts = counts
        self._group_id = group_id
        self.positions: dict[tuple[str, int], int] = {}
        self._consumer: Any = None
        self._republisher: Any = None
        self._writer: str | None = None
        self._identity = identity
        # The filter's name for a child: a pseudonym with field encryption on.
        self._name = child_namer(settings)
        self._kinds = {
            settings.topic(CONSENT_TOPIC): _CONSENT,
            settings.topic(STATUS_TOPIC): _STATUS,
            settings.topic(SHARES_TOPIC): _SHARES,
            settings.topic(IDENTITY_LINKS_TOPIC): _LINK,
        }

    @cached_property
    def _consent_reader(self) -> StateRecordReader:
        serde = self._codecs.consent
        return StateRecordReader(schemas.load("ConsentRecord"), serde.schema_id, serde.decode)

    @cached_property
    def _status_reader(self) -> StateRecordReader:
        serde = self._codecs.status
        return StateRecordReader(schemas.load("ChildStatus"), serde.schema_id, serde.decode)

    def open(self, instance: str, writer: str | None = None) -> None:
        """Assign every partition of the state topics, from the saved positions.

        Args:
            instance: this process's name, for the reader's consumer.
            writer: the name this process writes status records under (its transactional id).
        """
        self._writer = writer
        # A short fetch wait: the catch-up after each partition assignment asks every state
        # partition's end, and each such request waits behind a fetch in flight (the 500 ms
        # default made a rebalance cost 0.5 s per state partition: 12 s with 24).
        self._consumer = consumer(
            self.settings, f"{self._group_id}-state-{instance}", **{"fetch.wait.max.ms": 50}
        )
        metadata = admin_client(self.settings).list_topics(timeout=10)
        saved = self._store.positions()
        assignment = []
        links = self.settings.topic(IDENTITY_LINKS_TOPIC)
        identity = (IDENTITY_LINKS_TOPIC,) if self._identity else ()
        for logical in (CONSENT_TOPIC, STATUS_TOPIC, SHARES_TOPIC, *identity):
            name = self.settings.topic(logical)
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                msg = f"Topic {name} does not exist; run `sgb topics apply`."
                raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, msg))
            for partition in topic.partitions:
                # -2: from the beginning (always for links: the index is held in memory)
                offset = -2 if name == links else saved.get((name, partition), -2)
                assignment.append(TopicPartition(name, partition, offset))
        self._consumer.assign(assignment)

    def catch_up(self, stalled_after: float = 120.0, chunk: int = CHUNK) -> None:
        """Read the state topics to their current end before deciding anything.

        The end is judged by the consumer's position, not by message offsets: records
        written in transactions are followed by commit markers that are never delivered.
        The store commits every ``chunk`` records (states and read positions together, as
        :meth:`drain` does), so memory stays bounded however many children there are and a
        restart resumes from the last chunk. It gives up only when reading stops making
        progress: ``stalled_after`` seconds with no position advancing (a national rebuild
        takes as long as it takes). Records are applied a consume batch at a time (at most a
        chunk), each batch's children loaded from the store in one go; a store with saved
        positions reads only what was written after them.
        """
        cons = self._consumer
        ends: dict[tuple[str, int], int] = {}
        saved = self._store.positions()
        for tp in cons.assignment():
            _, high = watermarks(cons, tp)
            if high > saved.get((tp.topic, tp.partition), 0):
                ends[(tp.topic, tp.partition)] = high
        began = last_progress = time.monotonic()
        last_report, applied, uncommitted = began, 0, 0
        while ends:
            messages = cons.consume(min(BATCH, chunk), timeout=0.5)
            self._apply_all(messages)
            if messages:
                last_progress = time.monotonic()
                applied += len(messages)
                uncommitted += len(messages)
                if uncommitted >= chunk:
                    self._store.commit(self.positions)
                    uncommitted = 0
            elif time.monotonic() - last_progress > stalled_after:
                msg = f"The state topics stopped advancing for {stalled_after:.0f} s before their end."
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, msg))
            for tp in cons.position([TopicPartition(t, p) for t, p in ends]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    del ends[(tp.topic, tp.partition)]
            if time.monotonic() - last_report > 10:
                log.info("state catching up", records=applied, elapsed_s=round(time.monotonic() - began, 1))
                last_report = time.monotonic()
        self._store.commit(self.positions)
        log.info("state caught up", count=self._counts["consent_records"], records=applied)

    def drain(self) -> None:
        """Apply whatever has arrived since the last call, without waiting."""
        messages = self._consumer.consume(1000, timeout=0)
        self._apply_all(messages)
        if messages:
            # Committed at once, so that an aborted batch's rollback cannot undo them.
            self._store.commit(self.positions)

    def derive(self, producer: Any, key: str, event: dict[str, Any]) -> ChildState:
        """The child's state after ``event``, put in the store; when the event changed the
        child's flags, its status record is produced with ``producer`` (the caller's transaction)."""
        before = self._store.get(key)
        after = status.derive(event, before)
        if after is not before:
            self._store.put(key, after)
            if status.flags_changed(before, after):
                record = status.status_record(key, after, event["event_id"], written_by=self._writer)
                producer.produce(
                    self.settings.topic(STATUS_TOPIC),
                    key=key.encode(),
                    value=self._codecs.status.encode(record),
                )
        return after

    def close(self, *, leave: bool = True) -> None:
        """Close the reader; ``leave=False`` after a failure, when closing could block."""
        if leave and self._consumer is not None:
            self._consumer.close()
        if self._republisher is not None:
            self._republisher.flush(10)

    def _apply_all(self, messages: list[Message]) -> None:
        """Apply state records in their order. All are decoded first and the children they
        name loaded from the store in one go, so a rebuild does not query once per record."""
        read = [item for item in map(self._read, messages) if item is not None]
        self._store.load(key for kind, key, _ in read if kind is not _SHARES and kind is not _LINK)
        for kind, key, record in read:
            if kind is _CONSENT:
                self._apply_consent(key, record)
            elif kind is _STATUS:
                self._apply_status(key, record)
            elif kind is _SHARES:
                apply_read_back(self._store, record)
            elif self._identity is not None:
                self._identity.apply_record(record)
                self._counts["identity_links"] += 1

    def _read(self, msg: Message) -> tuple[str, str, dict[str, Any]] | None:
        """(kind, child key, record) of one message, or None when there is nothing to apply;
        records the read position of a state topic's message (links are read from the start)."""
        if msg.error():
            return None
        topic = str(msg.topic())
        kind = self._kinds.get(topic, _STATUS)
        value = msg.value()
        if kind is _LINK:
            if self._identity is None or value is None:
                return None
            try:
                return _LINK, "", self._codecs.identity_link.decode(value)
            except SerdeError as exc:
                log.error(
                    "identity link unreadable; skipped",
                    partition=msg.partition(),
                    offset=msg.offset(),
                    reason=str(exc),
                )
                return None
        self.positions[(topic, msg.partition() or 0)] = (msg.offset() or 0) + 1
        raw_key = msg.key()
        if not raw_key or value is None:
            return None
        try:
            if kind is _CONSENT:
                record = self._consent_reader.decode(value)
                key = consent_child_key(record)
                return None if key is None else (_CONSENT, self._name(key), record)
            if kind is _SHARES:
                return _SHARES, "", self._codecs.shares.decode(value)
            return _STATUS, raw_key.decode(), self._status_reader.decode(value)
        except SerdeError as exc:
            log.error(
                "state record unreadable; skipped",
                topic=msg.topic(),
                partition=msg.partition(),
                offset=msg.offset(),
                reason=str(exc),
            )
            return None

    def _apply_status(self, key: str, record: dict[str, Any]) -> None:
        """Apply a status record fact by fact; a newer fact in the store is never overwritten.

        This process's own records come back after it has already moved on, and the newer
        record follows them on the topic, so they are simply outvoted. A stale record from
        another process may be the last on its compacted key, so the merged state is
        published again after it (as for consent), and a fresh filter rebuilds the newest.
        """
        before = self._store.get(key)
        after, stale = status.merge_status(before, record)
        if after is not before:
            self._store.put(key, after)
        if stale and record.get("written_by") != self._writer:
            self._publish(
                self.settings.topic(STATUS_TOPIC),
                key,
                self._codecs.status.encode(
                    status.status_record(
                        key, after, record.get("updated_by_event_id"), written_by=self._writer
                    )
                ),
            )
            self._counts["status_republished"] += 1

    def _publish(self, topic: str, key: str, value: bytes) -> None:
        if self._republisher is None:
            self._republisher = producer(self.settings)
        self._republisher.produce(topic, key=key.encode(), value=value)

    def _apply_consent(self, key: str, record: dict[str, Any]) -> None:
        """Apply a consent record; newest by recorded time wins (principle 6).

        A record that loses (it arrived late but was recorded earlier) is the last on its
        compacted key, so compaction would keep it and a fresh filter would rebuild the
        wrong state. The record in force is therefore published again after it, so the
        newest by recorded time is also the last by offset. A child the store has never held
        takes the record as it is: there is nothing to merge with (most of a fresh rebuild).
        """
        if self._store.never_held(key):
            self._store.put_row(key, consent_row(record))
            self._counts["consent_records"] += 1
            return
        before = self._store.get(key)
        after = status.apply_consent(before, record)
        self._counts["consent_records"] += 1
        if after is before:
            winner = status.consent_in_force(before, record)
            if winner is not None:
                self._publish(
                    self.settings.topic(CONSENT_TOPIC),
                    consent_key(winner) or "",
                    self._codecs.consent.encode(winner),
                )
                self._counts["consent_republished"] += 1
            return
        self._store.put(key, after)
