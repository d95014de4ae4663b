"""``sgb status``: what an operator needs at a glance, read from Kafka alone.

- per topic, the end offsets (how much was ever written) and how much is still retained;
- the lag of the filter's consumer group and of every hub's group: committed offsets
  against the end, counting only records a ``read_committed`` reader would get (the
  commit markers the filter's transactions leave are not lag);
- dead letters by component and reason (from the ``sg.dlq.v1`` headers, never the payload);
- decisions per minute over the last minutes, shares against withholds (the audit topic,
  read from a point in time).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaException,
    Message,
)
from confluent_kafka import TopicPartition as TP

from broker.clients import admin_client, consumer
from broker.exceptions import KafkaUnavailable, SerdeError
from broker.hub.delivered import header_map, position
from broker.security.provenance import carried
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import AUDIT_TOPIC, DELIVERY_PREFIX, DLQ_TOPIC, INGRESS_PREFIX
from sgb.ops.topic_reads import Position, committed_offsets, partition_ends, read_to_end

PROBE_LIMIT = 20_000  # records read per partition to tell real lag from transaction markers


@dataclass(frozen=True, slots=True)
class TopicEnds:
    """A topic's offsets, and its records: transaction commit markers take offsets too, so only
    ``records`` (what a read_committed reader gets) counts events."""

    topic: str
    partitions: int
    end_offset: int
    retained: int
    records: int = 0
    exact: bool = True  # False: a partition too long to read was counted by its offsets


@dataclass(frozen=True, slots=True)
class GroupLag:
    role: str
    group: str
    topic: str
    lag: int
    exact: bool


@dataclass(frozen=True, slots=True)
class DeadLetterCount:
    component: str
    reason: str
    count: int
    latest: str


@dataclass(frozen=True, slots=True)
class MinuteDecisions:
    minute: str
    shared: int
    withheld: int


@dataclass(slots=True)
class Status:
    generated_at: str
    topics: list[TopicEnds] = field(default_factory=list)
    lags: list[GroupLag] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)
    dead_letters: list[DeadLetterCount] = field(default_factory=list)
    decisions: list[MinuteDecisions] = field(default_factory=list)
    minutes: int = 10
    #: Recipients told of a correction in the same minutes, by what they were told
    #: (AMENDED, RETRACTED, ERASED; POLICY.md principle 10).
    corrections: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One dead letter's metadata (and, when asked for, its original key and payload for replay)."""

    partition: int
    offset: int
    failed_at: datetime
    component: str
    reason: str
    origin_topic: str | None
    origin_partition: int | None
    origin_offset: int | None
    source_name: str | None
    position: str | None
    event_id: str | None = None
    key: bytes | None = None
    payload: bytes | None = None
    provenance: tuple[tuple[str, bytes], ...] = ()  # the original message's signature headers

    @property
    def origin(self) -> str:
        """Where it came from: ``topic[partition]@offset`` or ``source position``."""
        if self.origin_topic:
            return f"{self.origin_topic}[{self.origin_partition}]@{self.origin_offset}"
        if self.source_name:
            return f"{self.source_name} {self.position or ''}".strip()
        return "unknown"


def _logical(settings: Settings, name: str) -> str:
    return name[len(settings.topic_prefix) :] if settings.topic_prefix else name


def _data_offsets(settings: Settings, start: dict[Position, int]) -> dict[Position, list[int]]:
    found: dict[Position, list[int]] = {tp: [] for tp in start}

    def note(msg: Message) -> None:
        topic, partition, offset = position(msg)
        found[(topic, partition)].append(offset)

    read_to_end(settings, start, note)
    return found


def topic_ends(settings: Settings, ends: dict[Position, tuple[int, int]]) -> list[TopicEnds]:
    """Per topic: end offsets, what is retained, and the records in it, markers left out."""
    probe = {tp: low for tp, (low, end) in ends.items() if 0 < end - low <= PROBE_LIMIT}
    data = _data_offsets(settings, probe)
    per_topic: dict[str, list[Position]] = {}
    for tp in ends:
        per_topic.setdefault(tp[0], []).append(tp)
    out = []
    for topic, tps in sorted(per_topic.items()):
        records, exact = 0, True
        for tp in tps:
            low, end = ends[tp]
            if tp in data:
                records += len(data[tp])
            elif end > low:
                records += end - low
                exact = False
        out.append(
            TopicEnds(
                _logical(settings, topic),
                len(tps),
                sum(ends[tp][1] for tp in tps),
                sum(ends[tp][1] - ends[tp][0] for tp in tps),
                records,
                exact,
            )
        )
    return out


def group_lags(
    settings: Settings, ends: dict[Position, tuple[int, int]], committed: dict[str, dict[Position, int]]
) -> list[GroupLag]:
    """Lag of every group per topic it reads, by role: ``filter`` (ingress), ``hub`` (delivery), ``other``."""
    by_group: dict[str, dict[str, dict[int, int]]] = {}
    for group, offsets in committed.items():
        for (topic, partition), offset in offsets.items():
            by_group.setdefault(group, {}).setdefault(topic, {})[partition] = offset
    gaps: dict[tuple[str, str, int], tuple[int, int]] = {}
    probe: dict[Position, int] = {}
    for group, topics in by_group.items():
        for topic, by_partition in topics.items():
            for (t, p), (low, end) in ends.items():
                if t != topic:
                    continue
                start = max(by_partition.get(p, low), low)
                if end > start:
                    gaps[(group, t, p)] = (start, end)
                    if end - start <= PROBE_LIMIT:
                        probe[(t, p)] = min(probe.get((t, p), start), start)
    data = _data_offsets(settings, probe)
    lag: Counter[tuple[str, str]] = Counter()
    exact: dict[tuple[str, str], bool] = {}
    for group, topics in by_group.items():
        for topic in topics:
            lag[(group, topic)] += 0
            exact.setdefault((group, topic), True)
    for (group, topic, partition), (start, end) in gaps.items():
        if (topic, partition) in data:
            lag[(group, topic)] += sum(1 for o in data[(topic, partition)] if o >= start)
        else:
            lag[(group, topic)] += end - start
            exact[(group, topic)] = False
    out = []
    for (group, topic), value in lag.items():
        logical = _logical(settings, topic)
        role = (
            "filter"
            if logical.startswith(INGRESS_PREFIX)
            else "hub"
            if logical.startswith(DELIVERY_PREFIX)
            else "other"
        )
        out.append(GroupLag(role, group, logical, value, exact[(group, topic)]))
    return sorted(out, key=lambda g: (("filter", "hub", "other").index(g.role), g.topic, g.group))


def dead_letters(
    settings: Settings, *, with_payload: bool = False, timeout: float = 60.0
) -> Iterator[DeadLetterView]:
    """Every dead letter on the topic, oldest first per partition; payloads only when asked for (replay)."""
    topic = settings.topic(DLQ_TOPIC)
    try:
        meta = admin_client(settings).list_topics(topic, timeout=10).topics[topic]
    except (KafkaException, KeyError):
        msg = f"Kafka at {settings.bootstrap} did not answer within 10 s."
        raise KafkaUnavailable(msg) from None
    if meta.error is not None:
        msg = f"Topic {topic} does not exist; run `sgb topics apply`."
        raise KafkaUnavailable(msg)
    codecs = Codecs(registry_for(settings, read_only=True)) if with_payload else None
    found: list[DeadLetterView] = []

    def collect(msg: Message) -> None:
        found.append(_dead_letter(msg, codecs))

    read_to_end(settings, {(topic, p): OFFSET_BEGINNING for p in meta.partitions}, collect, timeout)
    yield from sorted(found, key=lambda d: (d.failed_at, d.partition, d.offset))


def _dead_letter(msg: Message, codecs: Codecs | None) -> DeadLetterView:
    headers = header_map(msg)
    _, partition, offset = position(msg)

    def number(name: str) -> int | None:
        value = headers.get(name)
        return int(value) if value and value.lstrip("-").isdigit() else None

    _, millis = msg.timestamp()
    view = DeadLetterView(
        partition=partition,
        offset=offset,
        failed_at=datetime.fromtimestamp(millis / 1000, UTC),
        component=headers.get("sgb.component", "unknown"),
        reason=headers.get("sgb.reason", "unknown"),
        origin_topic=headers.get("sgb.origin.topic"),
        origin_partition=number("sgb.origin.partition"),
        origin_offset=number("sgb.origin.offset"),
        source_name=headers.get("sgb.source.name"),
        position=headers.get("sgb.source.position"),
        key=msg.key(),
        provenance=tuple(carried(msg.headers())),
    )
    if codecs is None:
        return view
    try:
        record = codecs.dead_letter.decode(msg.value())
    except SerdeError:
        return view
    from dataclasses import replace

    return replace(
        view,
        event_id=record.get("event_id"),
        payload=record.get("payload"),
        key=record.get("key") or msg.key(),
    )


def dead_letter_counts(letters: Iterator[DeadLetterView]) -> list[DeadLetterCount]:
    """Dead letters grouped by component and reason, the most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    latest: dict[tuple[str, str], datetime] = {}
    for letter in letters:
        key = (letter.component, letter.reason)
        counts[key] += 1
        latest[key] = max(latest.get(key, letter.failed_at), letter.failed_at)
    return [DeadLetterCount(c, r, n, _iso(latest[(c, r)])) for (c, r), n in counts.most_common()]


def decisions_per_minute(
    settings: Settings, minutes: int, now: datetime | None = None, corrections: Counter[str] | None = None
) -> list[MinuteDecisions]:
    """Shares and withholds per minute over the last ``minutes`` minutes, oldest first, empty ones
    too; the decisions on corrections are also counted by kind into ``corrections``."""
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = now - timedelta(minutes=minutes)
    topic = settings.topic(AUDIT_TOPIC)
    cons = consumer(settings, f"sgb-status-{uuid.uuid4().hex[:12]}")
    try:
        partitions = cons.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TP(topic, p, int(since.timestamp() * 1000)) for p in partitions]
        start = {
            (tp.topic, tp.partition): tp.offset
            for tp in cons.offsets_for_times(wanted, timeout=10)
            if tp.offset >= 0
        }
    finally:
        cons.close()
    codecs = Codecs(registry_for(settings, read_only=True))
    shared: Counter[datetime] = Counter()
    withheld: Counter[datetime] = Counter()

    def count(msg: Message) -> None:
        minute = datetime.fromtimestamp(msg.timestamp()[1] / 1000, UTC).replace(second=0, microsecond=0)
        try:
            decisions = codecs.audit.decisions(msg.value())  # one per event, or older: one per decision
        except SerdeError:
            return
        for decision in decisions:
            (shared if decision["outcome"] == "SHARE" else withheld)[minute] += 1
            if corrections is not None and decision.get("correction"):
                corrections[str(decision["correction"])] += 1

    read_to_end(settings, start, count)
    return [
        MinuteDecisions(
            _iso(since + timedelta(minutes=i)),
            shared[since + timedelta(minutes=i)],
            withheld[since + timedelta(minutes=i)],
        )
        for i in range(minutes)
    ]


def collect(settings: Settings, minutes: int = 10) -> Status:
    """Everything ``sgb status`` shows."""
    admin = admin_client(settings)
    ends = partition_ends(settings, admin)
    committed = committed_offsets(settings, admin)
    status = Status(generated_at=_iso(datetime.now(UTC)), minutes=minutes)
    status.topics = topic_ends(settings, ends)
    status.lags = group_lags(settings, ends, committed)
    read = {lag.topic for lag in status.lags}
    status.unread = {
        t.topic: t.records
        for t in status.topics
        if t.topic.startswith(DELIVERY_PREFIX) and t.records and t.topic not in read
    }
    status.dead_letters = dead_letter_counts(dead_letters(settings))
    told: Counter[str] = Counter()
    status.decisions = decisions_per_minute(settings, minutes, corrections=told)
    status.corrections = dict(sorted(told.items()))
    return status


def as_json(status: Status) -> dict[str, Any]:
    """The status as plain JSON-ready data."""
    return asdict(status)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
