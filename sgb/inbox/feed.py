"""Keeping the inbox store current: the hub's deliveries and the decisions behind them.

The subscriber is the same :class:`broker.hub.subscriber.Subscriber` that ``sgb hub subscribe`` runs,
into the SQLite sink (so deliveries are durable before their offsets are committed). Each
delivery carries the filter's decision in its headers (rule, reason, lawful basis, consent
state), and the decision is stored with it: a hub needs no access to the audit topic, which
holds every organisation's decisions and which a hub's Kafka principal may not read.

With ``read_audit`` (an auditor's credentials, for example a hub's information-governance
lead), a second thread also reads ``sg.audit.decisions.v1`` and keeps this hub's own
decisions, withholds included, so the page can count what was withheld and why. It needs
no consumer group: the positions it read to are stored in the same transaction as the
decisions. On first start it begins a little before the oldest delivery still on the
delivery topic, since a decision is always written just after its delivery.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from broker.clients import admin_client, consumer
from broker.exceptions import SerdeError, SgbError
from broker.hub.delivered import HubEvent, position
from broker.hub.sinks.sqlite import SqliteSink
from broker.hub.subscriber import Subscriber
from broker.logs import get_logger
from broker.probes import Health
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import AUDIT_TOPIC
from sgb.inbox.store import InboxStore

log = get_logger("broker.inbox")

MARGIN_MS = 5 * 60 * 1000


def earliest_timestamp_ms(settings: Settings, topic: str, timeout: float = 10.0) -> int | None:
    """The timestamp of the oldest committed message on ``topic`` (None when it is empty)."""
    cons = consumer(settings, f"sgb-inbox-probe-{time.monotonic_ns()}", **{"enable.partition.eof": True})
    try:
        partitions = cons.list_topics(topic, timeout=timeout).topics[topic].partitions
        cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, earliest = set(partitions), None
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in cons.consume(100, timeout=0.5):
                if msg.partition() not in pending:
                    continue
                pending.discard(msg.partition())
                if msg.error() is None:
                    millis = msg.timestamp()[1]
                    earliest = millis if earliest is None else min(earliest, millis)
        return earliest
    finally:
        cons.close()


class AuditReader:
    """Reads the audit topic into the store, keeping this hub's decisions only.

    Args:
        settings: how to reach Kafka.
        audience: the hub's audience.
        organisation: the hub's organisation code.
        store: where decisions and positions go.
        delivery_topic: the hub's delivery topic (physical name), to choose where to start.
    """

    def __init__(
        self, settings: Settings, audience: str, organisation: str, store: InboxStore, delivery_topic: str
    ) -> None:
        self.settings, self.audience, self.organisation = settings, audience, organisation
        self.store = store
        self.topic = settings.topic(AUDIT_TOPIC)
        self.delivery_topic = delivery_topic
        self._codecs = Codecs(registry_for(settings, read_only=True))
        self.caught_up = threading.Event()

    def _assign(self, cons: Any) -> None:
        partitions = cons.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        saved = self.store.positions(self.topic)
        missing = [p for p in partitions if p not in saved]
        start: dict[int, int] = {p: saved[p] for p in partitions if p in saved}
        if missing:
            earliest = earliest_timestamp_ms(self.settings, self.delivery_topic)
            millis = (earliest if earliest is not None else int(time.time() * 1000)) - MARGIN_MS
            wanted = [TopicPartition(self.topic, p, millis) for p in missing]
            found = cons.offsets_for_times(wanted, timeout=10)
            for tp in found:
                start[tp.partition] = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
        cons.assign([TopicPartition(self.topic, p, o) for p, o in start.items()])

    def run(self, stop: threading.Event) -> None:
        """Read until ``stop`` is set."""
        cons = consumer(self.settings, f"sgb-inbox-audit-{uuid.uuid4().hex[:12]}")  # never commits
        try:
            self._assign(cons)
            while not stop.is_set():
                messages = [m for m in cons.consume(1000, timeout=0.5) if m.error() is None]
                if not messages:
                    self.caught_up.set()
                    continue
                kept: list[dict[str, Any]] = []
                positions: dict[tuple[str, int], int] = {}
                for msg in messages:
                    topic, partition, offset = position(msg)
                    positions[(topic, partition)] = offset + 1
                    try:
                        decisions = self._codecs.audit.decisions(msg.value())
                    except SerdeError as exc:
                        log.warning(
                            "audit record unreadable; skipped",
                            topic=topic,
                            partition=partition,
                            offset=offset,
                            reason=str(exc),
                        )
                        continue
                    kept += [
                        decision
                        for decision in decisions
                        if (decision["audience"], decision.get("organisation"))
                        == (self.audience, self.organisation)
                    ]
                self.store.put_decisions(kept, positions)
        finally:
            cons.close()


class DecisionRecordingSink:
    """The SQLite sink, storing first the decision each delivery carries (idempotent), then
    the delivery: a crash between the two leaves a decision whose delivery is redone."""

    kind = SqliteSink.kind

    def __init__(self, sink: SqliteSink, store: InboxStore) -> None:
        self.sink, self.store = sink, store

    def write(self, events: Sequence[HubEvent]) -> int:
        self.store.put_decisions([_decision(e) for e in events if e.decision], {})
        return self.sink.write(events)

    def close(self) -> None:
        self.sink.close()


def _decision(event: HubEvent) -> dict[str, Any]:
    reason = event.decision.get("reason")
    return {
        "event_id": event.event_id,
        "audience": event.audience,
        "organisation": event.organisation,
        "outcome": "SHARE",
        "reason": None if reason in (None, "granted") else reason,
        "rule": event.decision.get("rule") or None,
        "lawful_basis": event.decision.get("lawful_basis"),
        "consent_state": event.decision.get("consent_state"),
        "policy_version": event.policy_version,
        "decided_at": event.delivered_at,
    }


class InboxFeed:
    """The two background readers of ``sgb hub serve``, with their health.

    Args:
        settings: how to reach Kafka.
        audience: the hub's audience.
        organisation: the hub's organisation code.
        db: the SQLite store (shared with ``sgb hub subscribe --sink sqlite:...`` if you like).
        group_id: the deliveries' consumer group (default ``sgb-hub-<audience>-<organisation>-inbox``).
        read_audit: also read the audit topic for this hub's withholds (needs READ on it).
    """

    def __init__(
        self,
        settings: Settings,
        audience: str,
        organisation: str,
        db: Path,
        group_id: str | None = None,
        read_audit: bool = False,
    ) -> None:
        default = settings.topic(f"sgb-hub-{audience.lower()}-{organisation}-inbox")
        self.subscriber = Subscriber(settings, audience, organisation, group_id or default)
        self.audience, self.organisation = self.subscriber.audience, organisation
        self.db = db
        self.store = InboxStore(db)
        self.audit = (
            AuditReader(settings, self.audience, organisation, self.store, self.subscriber.topic)
            if read_audit
            else None
        )
        self.health = Health("inbox")
        self.stop = threading.Event()
        self.failures: list[str] = []
        self._threads: list[threading.Thread] = []
        if self.audit is not None:
            self.health.add_check("audit", self.audit.caught_up.is_set)
        self.health.add_check("readers", lambda: not self.failures)

    def _guard(self, name: str, target: Any) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except (SgbError, KafkaException) as exc:
                self.failures.append(name)
                log.error("inbox reader stopped", component=name, reason=str(exc))
            except Exception as exc:  # reported by readiness; the page keeps serving what it has
                self.failures.append(name)
                log.error("inbox reader failed", component=name, exc_type=type(exc).__name__)

        return threading.Thread(target=run, name=f"inbox-{name}", daemon=True)

    def check_onboarded(self, timeout: float = 10.0) -> None:
        """Stop at start, with one sentence, when the hub's delivery topic does not exist (the
        organisation is not onboarded): otherwise the page would say "catching up" for ever."""
        topic = self.subscriber.topic
        try:
            found = (
                admin_client(self.subscriber.settings).list_topics(topic, timeout=timeout).topics.get(topic)
            )
        except KafkaException:
            msg = f"Kafka at {self.subscriber.settings.bootstrap} did not answer within {timeout:.0f} s."
            raise SgbError(msg) from None
        if found is None or found.error is not None:
            msg = (
                f"Delivery topic {topic} does not exist: {self.audience} {self.organisation} "
                "is not onboarded (add it to deploy/topics.yaml and run `sgb topics apply`)."
            )
            raise SgbError(msg)

    @property
    def stopped(self) -> bool:
        """Whether a background reader has stopped (the page then says so, not "catching up")."""
        return bool(self.failures)

    def start(self) -> None:
        """Start both readers in the background."""
        sink = DecisionRecordingSink(SqliteSink(self.db, self.audience, self.organisation), self.store)
        self._threads = [
            self._guard("deliveries", lambda: self.subscriber.run(sink, self.stop, health=self.health)),
        ]
        if self.audit is not None:
            audit = self.audit
            self._threads.append(self._guard("audit", lambda: audit.run(self.stop)))
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 15.0) -> None:
        """Stop both readers and wait for them."""
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout)
