"""``sgb policy evaluate`` and the filter on a real broker give identical decisions, or refuse
the same events with the same sentence (POLICY.md principle 8: one validation, one engine).

Simulated events (and a set of invalid ones) go through the running filter; the same events,
written as JSON, go through what ``sgb policy evaluate`` runs, each with the child's state the
filter had when it decided. The audit and dead-letter topics must match those answers exactly.

A few hundred events inside ``make test``; for the figure in the closing note run
``SGB_AGREE_EVENTS=10000 .venv/bin/python -m pytest tests/integration/test_evaluate_agrees_kafka.py -q -s --timeout 3600``.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import RunningFilter

from broker.clients import consumer, producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher
from consent.explain import explain
from consent.policy import load
from consent.state import ChildState
from consent.state_updates import apply_consent, derive
from schemas.child_keys import child_key, consent_key
from schemas.exceptions import InvalidEvent
from schemas.jsonform import to_json
from schemas.topics import AUDIT_TOPIC, CONSENT_TOPIC, DLQ_TOPIC, ingress_topic, load_declaration
from sgb.simulate.events import Population, Simulator

pytestmark = pytest.mark.kafka

EVENTS = int(os.environ.get("SGB_AGREE_EVENTS", "200"))
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
#: Agencies in the order they are published, each waited for: the filter reads the four ingress
#: topics in parallel, so one child's events from two agencies are decided in the order published
#: only when one agency's are all decided before the next agency's arrive.
PHASES = ("LOCAL_AUTHORITY", "HEALTH", "EDUCATION", "POLICE")
COMPARED = (
    "audience",
    "organisation",
    "organisation_source",
    "outcome",
    "reason",
    "rule",
    "lawful_basis",
    "consent_state",
    "removed_fields",
    "transformed_fields",
    "delivery_topic",
)


def broken(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Avro-valid events that break an identifier rule or name no child: one of each kind per agency."""
    out = []
    for agency in PHASES:
        base = next(e for e in events if e["source"]["agency"] == agency)
        for kind in ("nhs_check_digit", "no_child", "gp_code", "upn_letter"):
            ev = copy.deepcopy(base)
            ev["event_id"] = str(uuid.uuid4())
            child = ev["child"]
            if kind == "nhs_check_digit":
                child["nhs_number"] = child["nhs_number"][:9] + str((int(child["nhs_number"][9]) + 1) % 10)
            elif kind == "no_child":
                child.update(nhs_number=None, upn=None, la_child_id=None, police_person_reference=None)
            elif kind == "gp_code":
                child["gp_practice_ods"] = "F8300"
            else:
                child["upn"] = "B123456789012"  # the check letter of 123456789012 is A
            out.append(ev)
    return out


def produce_raw(settings: Settings, codecs: Codecs, events: list[dict[str, Any]]) -> None:
    prod = producer(settings)
    for ev in events:
        key = child_key(ev["child"]) or "none"
        prod.produce(
            settings.topic(ingress_topic(ev["source"]["agency"])),
            key=key.encode(),
            value=codecs.event.encode(ev),
        )
    prod.flush(30)


def read_all(
    settings: Settings, logical: str, expect: int, decode: Any, timeout: float
) -> list[dict[str, Any]]:
    cons = consumer(settings, f"agree-{uuid.uuid4().hex[:8]}")
    cons.subscribe([settings.topic(logical)])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for m in cons.consume(1000, timeout=0.5):
                if not m.error():
                    out.extend(decode(m.value()))  # a message may carry several records
    finally:
        cons.close()
    return out


def wait_handled(counts: Any, events: int, audiences: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (counts["shared"] + counts["withheld"]) // audiences + counts["dead_lettered"] < events:
        assert time.monotonic() < deadline, f"the filter handled too few events: {dict(counts)}"
        time.sleep(0.1)


def test_evaluate_and_the_filter_agree_on_simulated_and_invalid_events(
    kafka: Settings, group_id: str
) -> None:
    policy, declaration = load(), load_declaration()
    simulator = Simulator(Population(max(40, EVENTS // 20), 16, today=START.date()), 16, start=START)
    events = list(simulator.events(EVENTS))
    consents = list(simulator.consent_records(max(10, EVENTS // 10)))
    invalid = broken(events)
    codecs = Codecs(registry_for(kafka))
    began = time.monotonic()

    # What `sgb policy evaluate` answers, event by event, with the state the filter will have had.
    states: dict[str, ChildState] = {}
    for record in consents:
        key = f"nhs:{record['nhs_number']}"
        states[key] = apply_consent(states.get(key, ChildState()), record)
    expected: dict[str, Any] = {}
    for agency in PHASES:
        for ev in [e for e in events + invalid if e["source"]["agency"] == agency]:
            key = child_key(ev["child"]) or ""
            before = states.get(key, ChildState())
            try:
                result = explain(policy, json.loads(json.dumps(to_json(ev))), before, declaration, b"k" * 32)
            except InvalidEvent as exc:
                expected[ev["event_id"]] = str(exc)
                continue
            expected[ev["event_id"]] = sorted(
                (tuple(json.dumps(d.get(k)) for k in COMPARED) for d in result["decisions"]), key=str
            )
            states[key] = derive(ev, before)
    evaluated = time.monotonic() - began

    with RunningFilter(kafka, group_id=group_id, instance="agree") as running:
        counts = running.service.counts
        prod = producer(kafka)
        for record in consents:
            prod.produce(
                kafka.topic(CONSENT_TOPIC),
                key=(consent_key(record) or "").encode(),
                value=codecs.consent.encode(record),
            )
        prod.flush(30)
        deadline = time.monotonic() + 60
        while counts["consent_records"] < len(consents):
            assert time.monotonic() < deadline, "the filter did not read the consent records"
            time.sleep(0.1)
        published = 0
        started = time.monotonic()
        for agency in PHASES:
            publisher = EventPublisher(kafka, agency)
            for ev in events:
                if ev["source"]["agency"] == agency:
                    publisher.publish(ev)
                    published += 1
            publisher.flush()
            mine = [e for e in invalid if e["source"]["agency"] == agency]
            produce_raw(kafka, codecs, mine)
            published += len(mine)
            wait_handled(counts, published, len(policy.audiences), 60 + EVENTS / 20)
        filtered = time.monotonic() - started

    audits = read_all(
        kafka, AUDIT_TOPIC, EVENTS * len(policy.audiences), codecs.audit.decisions, 60 + EVENTS / 50
    )
    dead = read_all(kafka, DLQ_TOPIC, len(invalid), lambda v: [codecs.dead_letter.decode(v)], 60)
    decided: dict[str, list[Any]] = {}
    for audit in audits:
        row = {**audit, "reason": audit["reason"] or "granted"}
        decided.setdefault(audit["event_id"], []).append(tuple(json.dumps(row[k]) for k in COMPARED))
    actual: dict[str, Any] = {eid: sorted(rows, key=str) for eid, rows in decided.items()}
    actual.update({d["event_id"]: d["reason"] for d in dead})

    assert len(expected) == len(events) + len(invalid)
    assert sum(isinstance(v, str) for v in expected.values()) >= len(invalid)  # every broken event refused
    disagreements = [eid for eid in expected if actual.get(eid) != expected[eid]]
    print(
        f"\n{len(events)} simulated + {len(invalid)} invalid events: {len(disagreements)} disagreements; "
        f"evaluate {evaluated:.1f} s ({evaluated / len(expected) * 1000:.1f} ms an event), "
        f"filter {filtered:.1f} s, whole test {time.monotonic() - began:.1f} s"
    )
    assert not disagreements, (disagreements[:3], [(expected[e], actual.get(e)) for e in disagreements[:1]])
