"""The moving parts of a fault test: a sustained flow of synthetic events, a read_committed
watcher of the audit topic, filter processes, and the exactly-once tally at the end.

Recovery is measured from the moment of the fault: for each ingress partition, the first
event published after the fault that a ``read_committed`` reader can see (its audit records
commit in the same transaction as its deliveries); the partition that took longest gives
the recovery time. It is the time until deliveries flow again everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

import schemas
from broker.clients import admin_client, consumer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher
from consent import state_updates as status
from consent.engine import Engine
from consent.policy import load
from consent.state import ChildState
from schemas.child_keys import child_key
from schemas.topics import load_declaration
from sgb.simulate.events import Population, Simulator

POLICE_TYPES = ("DOMESTIC_ABUSE_INCIDENT", "MISSING_EPISODE", "EXPLOITATION_CONCERN")
# Health, police and education events, but no local-authority ones: those set a child's flags,
# and a flag set on one topic changes decisions on another (F2), which two filter processes
# may see in either order. Without them every decision follows from its own event.
MIXED_TYPES = (
    "EMERGENCY_ATTENDANCE",
    "HEALTH_SAFEGUARDING_CONCERN",
    "WAS_NOT_BROUGHT",
    *POLICE_TYPES,
    "SCHOOL_SAFEGUARDING_CONCERN",
    "ATTENDANCE_ALERT",
    "CHILD_MISSING_EDUCATION",
)
INGRESS = "sg.ingress.police.v1"
AUDIT = "sg.audit.decisions.v1"
# One audit record per event, carrying its decisions for all seven audiences.
AUDIT_RECORDS = 1


def synthetic_events(count: int, seed: int, types: tuple[str, ...] = MIXED_TYPES) -> list[dict[str, Any]]:
    """Synthetic events about 400 invented children (so every partition gets traffic)."""
    return list(Simulator(Population(400, seed), seed).events(count, types=types))


@dataclass
class Sent:
    event_id: str
    sent_at: float
    acked_at: float | None = None
    partition: tuple[str, int] | None = None  # (ingress topic, partition), known once acknowledged
    error: str | None = None


class SustainedFlow:
    """Publish events at a fixed rate from a thread through one :class:`EventPublisher`
    (idempotent, ``acks=all``) per agency, recording when each was sent and acknowledged.

    Args:
        settings: the test's settings.
        events: the events to publish, in order; the flow stops early when told.
        rate: events per second.
    """

    def __init__(self, settings: Settings, events: list[dict[str, Any]], rate: float) -> None:
        self.events = events
        self.rate = rate
        self.sent: list[Sent] = []
        self.publish_errors: list[str] = []
        agencies = sorted({e["source"]["agency"] for e in events})
        self._publishers = {agency: EventPublisher(settings, agency) for agency in agencies}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flow", daemon=True)

    def start(self) -> SustainedFlow:
        self._thread.start()
        return self

    def _run(self) -> None:
        began = time.monotonic()
        for i, event in enumerate(self.events):
            if self._stop.is_set():
                break
            due = began + i / self.rate
            while (now := time.monotonic()) < due:
                for publisher in self._publishers.values():
                    publisher.producer.poll(0)
                time.sleep(min(0.005, max(0.0, due - now)))
            record = Sent(event["event_id"], time.monotonic())
            self.sent.append(record)
            try:
                self._publishers[event["source"]["agency"]].publish(event, on_delivery=self._acked(record))
            except Exception as exc:  # the test fails on any: the publisher must keep going
                self.publish_errors.append(f"{type(exc).__name__}: {exc}")
        else:
            self.publish_errors.append("the flow ran out of events before it was stopped")

    @staticmethod
    def _acked(record: Sent) -> Any:
        def on_delivery(error: KafkaError | None, msg: Message) -> None:
            record.acked_at = time.monotonic()
            if error is not None:
                record.error = error.str()
            else:
                record.partition = (msg.topic(), msg.partition())

        return on_delivery

    def stop(self, flush_timeout: float = 60.0) -> list[dict[str, Any]]:
        """Stop publishing, wait for every acknowledgement; returns the events sent."""
        self._stop.set()
        self._thread.join(30)
        for publisher in self._publishers.values():
            publisher.flush(flush_timeout)
        return self.events[: len(self.sent)]

    @property
    def errors(self) -> list[str]:
        return self.publish_errors + [f"{s.event_id}: {s.error}" for s in self.sent if s.error]


class AuditWatcher:
    """Read the audit topic (``read_committed``) from a thread; note when each event's
    decisions first became visible and how many there were."""

    def __init__(self, settings: Settings) -> None:
        self.first_seen: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self._consumer = consumer(settings, f"watch-{uuid.uuid4().hex[:8]}", **{"fetch.wait.max.ms": 50})
        self._consumer.subscribe([settings.topic(AUDIT)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-watcher", daemon=True)

    def start(self) -> AuditWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(1000, timeout=0.1):
                    if msg.error() or msg.key() is None:
                        continue
                    event_id = msg.key().decode()
                    self.first_seen.setdefault(event_id, time.monotonic())
                    self.counts[event_id] += 1
        finally:
            self._consumer.close()

    def wait_all_visible(self, event_ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.counts[e] >= AUDIT_RECORDS for e in event_ids):
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _first_after(flow: SustainedFlow, fault_at: float) -> dict[tuple[str, int], Sent] | None:
    """The first event published after ``fault_at`` on each partition; None while an event
    published after it (more than a second ago) is not yet acknowledged, since its partition
    is known only from the acknowledgement."""
    now = time.monotonic()
    post = [r for r in flow.sent if r.sent_at >= fault_at]
    if not post or any(r.acked_at is None and r.sent_at < now - 1.0 for r in post):
        return None
    first: dict[tuple[str, int], Sent] = {}
    for record in post:
        if record.partition is not None:
            first.setdefault(record.partition, record)
    return first or None


def recovery_seconds(flow: SustainedFlow, visible: dict[str, float], fault_at: float) -> float | None:
    """Seconds from ``fault_at`` until, on every ingress partition, an event published after
    the fault has become visible to read_committed readers; None until then."""
    first = _first_after(flow, fault_at)
    if first is None:
        return None
    seen = [visible.get(r.event_id) for r in first.values()]
    if any(t is None for t in seen):
        return None
    return max(t - fault_at for t in seen if t is not None)


def ack_recovery_seconds(flow: SustainedFlow, fault_at: float) -> float | None:
    """Seconds from ``fault_at`` until every partition has acknowledged an event published
    after the fault (the publisher's own view of a leader change); None until then."""
    first = _first_after(flow, fault_at)
    if first is None:
        return None
    return max((r.acked_at or 0.0) - fault_at for r in first.values())


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


# -- filter processes -------------------------------------------------------------------------
class FilterProcess:
    """``sgb filter run --group G --instance NAME`` as its own process, logging JSON to a file."""

    def __init__(self, settings: Settings, group: str, instance: str, log: Path) -> None:
        self.instance = instance
        self.log = log
        env = dict(os.environ)
        env.update(
            {
                "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
                "SGB_TOPIC_PREFIX": settings.topic_prefix,
                "SGB_STATE_DIR": str(settings.state_dir),
                "SGB_LOG_FORMAT": "json",
            }
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sgb.cli",
                "filter",
                "run",
                "--group",
                group,
                "--instance",
                instance,
                "--batch-size",
                "100",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )

    def lines(self) -> list[dict[str, Any]]:
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(x) for x in text.splitlines() if x.startswith("{")]

    def assigned(self) -> int:
        return sum(x.get("count", 0) for x in self.lines() if x.get("event") == "partitions assigned")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = "\n".join(self.log.read_text().splitlines()[-15:])
            raise AssertionError(f"filter {self.instance} exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- the tally ----------------------------------------------------------------------------------
def expected_deliveries(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Every (delivery topic, event id) the policy entitles, replaying each child's events in
    the order they were published, with the state the filter derives from them."""
    organisations = load_declaration().deliveries.organisations
    engine = Engine(
        load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: o in organisations.get(str(a), [])
    )
    states: dict[str, ChildState] = {}
    out: Counter[tuple[str, str]] = Counter()
    for event in events:
        key = child_key(event["child"]) or ""
        state = status.derive(event, states.get(key, ChildState()))
        states[key] = state
        for decision in engine.decide(event, state):
            if decision.topic:
                out[(decision.topic, event["event_id"])] += 1
    return out


def read_to_end(settings: Settings, topics: list[str], decode: Any) -> Counter[Any]:
    """Everything a read_committed reader sees on ``topics`` now, counted by ``decode(msg)``."""
    cons = consumer(settings, f"tally-{uuid.uuid4().hex[:8]}")
    ends: dict[tuple[str, int], int] = {}
    metadata = admin_client(settings).list_topics(timeout=10)
    assignment = []
    for name in topics:
        for partition in metadata.topics[name].partitions:
            tp = TopicPartition(name, partition)
            low, high = cons.get_watermark_offsets(tp, timeout=10, cached=False)
            if high > low:
                ends[(name, partition)] = high
                assignment.append(TopicPartition(name, partition, OFFSET_BEGINNING))
    out: Counter[Any] = Counter()
    cons.assign(assignment)
    deadline = time.monotonic() + 120
    try:
        while ends and time.monotonic() < deadline:
            for msg in cons.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                out[decode(msg)] += 1
            for tp in cons.position([TopicPartition(t, p) for t, p in ends]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    del ends[(tp.topic, tp.partition)]
    finally:
        cons.close()
    assert not ends, f"could not read {len(ends)} partition(s) to their end"
    return out


@dataclass
class Tally:
    sent: int
    delivered: int
    lost: int
    duplicated: int
    audits_missing: int = 0
    audits_extra: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not (self.lost or self.duplicated or self.audits_missing or self.audits_extra)


def tally_deliveries(settings: Settings, events: list[dict[str, Any]]) -> Tally:
    """Compare what read_committed readers see with what the policy entitles."""
    codecs = Codecs(registry_for(settings))
    expected = expected_deliveries(events)
    prefix = settings.topic_prefix
    deliveries = sorted(
        name
        for name in admin_client(settings).list_topics(timeout=10).topics
        if name.startswith(settings.topic("sg.deliver."))
    )
    got = read_to_end(
        settings, deliveries, lambda m: (m.topic()[len(prefix) :], codecs.event.decode(m.value())["event_id"])
    )
    lost = sum(max(0, n - got.get(k, 0)) for k, n in expected.items())
    duplicated = sum(max(0, n - expected.get(k, 0)) for k, n in got.items())
    audits = read_to_end(settings, [settings.topic(AUDIT)], lambda m: m.key().decode())
    ids = [e["event_id"] for e in events]
    missing = sum(max(0, AUDIT_RECORDS - audits.get(i, 0)) for i in ids)
    extra = sum(max(0, n - AUDIT_RECORDS) for n in audits.values()) + sum(
        n for i, n in audits.items() if i not in set(ids)
    )
    return Tally(len(events), sum(got.values()), lost, duplicated, missing, extra)


def tally_ingress(settings: Settings, events: list[dict[str, Any]]) -> Tally:
    """Compare the ingress topic (read_committed) with the events published."""
    codecs = Codecs(registry_for(settings))
    got = read_to_end(
        settings, [settings.topic(INGRESS)], lambda m: codecs.event.decode(m.value())["event_id"]
    )
    ids = Counter(e["event_id"] for e in events)
    lost = sum(max(0, n - got.get(k, 0)) for k, n in ids.items())
    duplicated = sum(max(0, n - ids.get(k, 0)) for k, n in got.items())
    return Tally(len(events), sum(got.values()), lost, duplicated)


def fault_line(name: str, tally: Tally, recovery: float, extra: str = "") -> str:
    line = (
        f"FAULT {name}: sent {tally.sent}, delivered {tally.delivered}, lost {tally.lost}, "
        f"duplicated {tally.duplicated}, recovery {recovery:.1f} s"
    )
    return f"{line}; {extra}" if extra else line
