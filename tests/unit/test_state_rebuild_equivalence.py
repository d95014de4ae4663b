"""The fast rebuild (issue 21, item 5) yields exactly the state the record-by-record path did.

A random stream of state-topic messages (real ``confluent_kafka.Message`` objects, no broker):
consent records for a few children and audiences, several recorded at the same time, older
ones arriving after newer; status records with fact versions, some stale, some this
process's own; share-ledger revisions; identity links; tombstones; unreadable values. The
reader applies it in batches of random size, committing at random points, through a store
whose cache holds a handful of children (so states are loaded back from disk). The
reference is the path the reader took before: decode each message with fastavro, apply it
with the pure updates of :mod:`consent.state_updates` to a dictionary.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message

from broker.exceptions import SerdeError
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from consent import state_updates as status
from consent.filter.shares import entry_from_record
from consent.filter.state_reader import StateReader
from consent.filter.store import SqliteStore, dumps
from consent.state import ChildState
from schemas.child_keys import consent_child_key, consent_key

WRITER = "filter-me"
SETTINGS = Settings()
CONSENT, STATUS = SETTINGS.topic("sg.consent.v1"), SETTINGS.topic("sg.status.v1")
SHARES, LINKS = SETTINGS.topic("sg.shares.v1"), SETTINGS.topic("sg.identity.links.v1")
AUDIENCES = ("MASH", "FAMILY_HELP", "GP", "ALL")
STATES = ("GIVEN", "REFUSED", "WITHDRAWN", "NOT_SOUGHT")
DAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Recorder:
    """Stands for the filter's identity index: the link records applied, in order."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def apply_record(self, record: dict[str, Any]) -> None:
        self.records.append(record)


class CapturingReader(StateReader):
    """The real reader; what it would publish again is kept instead of produced."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published: list[tuple[str, str, bytes]] = []

    def _publish(self, topic: str, key: str, value: bytes) -> None:
        self.published.append((topic, key, value))


def _consent(rng: random.Random, child: int) -> dict[str, Any]:
    return {
        "consent_id": f"c{rng.randrange(10_000)}",
        "nhs_number": None,
        "la_child_id": f"K{child:04d}" if rng.random() > 0.02 else None,  # a few name no child
        "local_authority_code": "202",
        "upn": None,
        "audience": rng.choice(AUDIENCES),
        "purpose": "FAMILY_HELP",
        "state": rng.choice(STATES),
        "given_by": rng.choice(("PARENT", "CHILD", None)),
        "recorded_at": DAY + timedelta(hours=rng.randrange(6)),  # ties and late older records
        "recorded_by": "202",
    }


def _status(rng: random.Random) -> dict[str, Any]:
    def maybe_date() -> date | None:
        return date(2025, 1, 1) + timedelta(days=rng.randrange(400)) if rng.random() < 0.5 else None

    facts = status.FACTS
    return {
        "child_key": None,
        "child_protection_plan_active": rng.random() < 0.5,
        "child_protection_plan_local_authority_code": rng.choice(("202", None)),
        "child_protection_plan_start_date": maybe_date(),
        "looked_after_active": rng.random() < 0.3,
        "looked_after_local_authority_code": rng.choice(("202", "301", None)),
        "looked_after_start_date": maybe_date(),
        "school_urn": rng.choice(("100001", "100002", None)),
        "gp_practice_ods": rng.choice(("A81001", None)),
        "local_authority_code": rng.choice(("202", None)),
        "updated_at": DAY + timedelta(milliseconds=rng.randrange(10**9)),
        "updated_by_event_id": f"e{rng.randrange(1000)}",
        "fact_versions": {f: rng.randrange(4) for f in rng.sample(facts, rng.randrange(len(facts) + 1))},
        "written_by": rng.choice((WRITER, "filter-other", None)),
        "child_protection_plan_event_id": rng.choice((f"e{rng.randrange(99)}", None)),
        "looked_after_event_id": rng.choice((f"e{rng.randrange(99)}", None)),
    }


def _share(rng: random.Random, children: int) -> dict[str, Any]:
    return {
        "event_id": f"ev{rng.randrange(40)}",
        "event_type": "DOMESTIC_ABUSE_INCIDENT",
        "child_key": f"la:202:K{rng.randrange(children):04d}",
        "recipients": [],
        "correction": None,
        "corrects_event_id": None,
        "revision": rng.randrange(4),
        "decided_at": DAY,
    }


def _link(rng: random.Random, children: int) -> dict[str, Any]:
    a, b = rng.sample(range(children), 2)
    return {
        "link_id": f"l{a}-{b}",
        "child_key_a": f"la:202:K{a:04d}",
        "child_key_b": f"nhs:9{b:09d}",
        "state": rng.choice(("LINKED", "CANDIDATE", "UNLINKED")),
        "rule": "AGENCY_XREF",
        "band": "DETERMINISTIC",
        "match_weight": None,
        "agreed_fields": None,
        "local_authority_code": "202",
        "reason": None,
        "decided_by": "filter",
        "recorded_at": DAY,
        "event_id": None,
    }


def stream(seed: int, count: int, children: int, codecs: Codecs) -> list[Message]:
    """``count`` messages over the four state topics, in the order a consumer would hand them out."""
    rng = random.Random(seed)
    offsets: Counter[tuple[str, int]] = Counter()
    messages = []
    for _ in range(count):
        roll = rng.random()
        child = rng.randrange(children)
        key: str | None
        value: bytes | None
        if roll < 0.5:
            topic, record = CONSENT, _consent(rng, child)
            key, value = consent_key(record) or "orphan", codecs.consent.encode(record)
        elif roll < 0.85:
            topic, key, value = STATUS, f"la:202:K{child:04d}", codecs.status.encode(_status(rng))
        elif roll < 0.92:
            share = _share(rng, children)
            topic, key, value = SHARES, share["event_id"], codecs.shares.encode(share)
        else:
            topic, key, value = LINKS, "link", codecs.identity_link.encode(_link(rng, children))
        if rng.random() < 0.05:
            value = None  # a tombstone
        elif value is not None and rng.random() < 0.02:
            value = value[: rng.randrange(len(value))]  # unreadable: cut short
        partition = rng.randrange(3)
        offset = offsets[(topic, partition)]
        offsets[(topic, partition)] += 1 + rng.randrange(2)  # gaps: transaction markers
        messages.append(
            Message(
                topic=topic,
                partition=partition,
                offset=offset,
                key=key.encode() if key and rng.random() > 0.01 else None,
                value=value,
            )
        )
    return messages


def reference(messages: list[Message], codecs: Codecs) -> dict[str, Any]:
    """The record-by-record path: fastavro's decode, the pure updates, a dictionary for a store."""
    states: dict[str, ChildState] = {}
    shares: dict[str, dict[str, Any]] = {}
    positions: dict[tuple[str, int], int] = {}
    published: list[tuple[str, str, bytes]] = []
    links: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for msg in messages:
        topic, value = msg.topic(), msg.value()
        if topic == LINKS:
            try:
                links.append(codecs.identity_link.decode(value))
                counts["identity_links"] += 1
            except SerdeError:
                pass
            continue
        positions[(str(topic), int(msg.partition() or 0))] = int(msg.offset() or 0) + 1
        raw = msg.key()
        key = raw.decode() if raw else None
        if key is None or value is None:
            continue
        try:
            if topic == CONSENT:
                record = codecs.consent.decode(value)
                child = consent_child_key(record)
                if child is None:
                    continue
                before = states.get(child, ChildState())
                after = status.apply_consent(before, record)
                counts["consent_records"] += 1
                if after is before:
                    winner = status.consent_in_force(before, record)
                    if winner is not None:
                        published.append((CONSENT, consent_key(winner) or "", codecs.consent.encode(winner)))
                        counts["consent_republished"] += 1
                    continue
                states[child] = after
            elif topic == SHARES:
                entry = entry_from_record(codecs.shares.decode(value))
                held = shares.get(entry["event_id"])
                if held is None or int(held["revision"]) < int(entry["revision"]):
                    shares[entry["event_id"]] = entry
            else:
                record = codecs.status.decode(value)
                before = states.get(key, ChildState())
                after, stale = status.merge_status(before, record)
                if after is not before:
                    states[key] = after
                if stale and record.get("written_by") != WRITER:
                    again = status.status_record(
                        key, after, record.get("updated_by_event_id"), written_by=WRITER
                    )
                    published.append((STATUS, key, codecs.status.encode(again)))
                    counts["status_republished"] += 1
        except SerdeError:
            continue
    return {
        "states": {k: dumps(s) for k, s in states.items()},
        "shares": shares,
        "positions": positions,
        "published": published,
        "links": links,
        "counts": counts,
    }


def fast(messages: list[Message], codecs: Codecs, path: Path, seed: int) -> dict[str, Any]:
    """The reader's catch-up path: batches, a small cache, commits at random points."""
    rng = random.Random(seed)
    store = SqliteStore(path, cache_size=8)
    links = Recorder()
    counts: Counter[str] = Counter()
    reader = CapturingReader(SETTINGS, store, codecs, counts, "g", identity=links)  # type: ignore[arg-type]
    reader._writer = WRITER
    at = 0
    while at < len(messages):
        size = rng.randrange(1, 60)
        reader._apply_all(messages[at : at + size])
        at += size
        if rng.random() < 0.3:
            store.commit(reader.positions)
    store.commit(reader.positions)
    store.close()
    reopened = SqliteStore(path)
    keys = [row[0] for row in reopened._db.execute("SELECT key FROM child_state")]
    shares = [row[0] for row in reopened._db.execute("SELECT event_id FROM shares")]
    result = {
        "states": {k: dumps(reopened.get(k)) for k in keys},
        "shares": {e: reopened.share(e) for e in shares},
        "positions": reopened.positions(),
        "published": reader.published,
        "links": links.records,
        "counts": counts,
    }
    reopened.close()
    return result


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_fast_rebuild_yields_the_state_of_the_record_by_record_path(tmp_path: Path, seed: int) -> None:
    codecs = Codecs(InMemoryRegistry())
    messages = stream(seed, 3000, children=60, codecs=codecs)
    expected = reference(messages, codecs)
    got = fast(messages, codecs, tmp_path / "state.db", seed)
    assert expected["counts"]["consent_republished"] > 0 and expected["counts"]["status_republished"] > 0
    assert len(expected["states"]) > 50 and expected["links"] and expected["shares"]
    for part in ("states", "shares", "positions", "links", "counts"):
        assert got[part] == expected[part], part
    assert _records(got["published"], codecs) == _records(expected["published"], codecs)


def _records(
    published: list[tuple[str, str, bytes]], codecs: Codecs
) -> list[tuple[str, str, dict[str, Any]]]:
    """What was published again, without the time a status record was written."""
    out = []
    for topic, key, value in published:
        record = codecs.consent.decode(value) if topic == CONSENT else codecs.status.decode(value)
        record.pop("updated_at", None)
        out.append((topic, key, record))
    return out
