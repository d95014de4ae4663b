"""``sgb simulate`` on a real broker: every event reaches its agency's ingress topic, keyed by child."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from broker.clients import consumer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.child_keys import consent_key
from schemas.topics import AGENCIES, ingress_topic
from sgb.simulate.events import EVENT_TYPES, Population, Simulator
from sgb.simulate.progress import LogProgress
from sgb.simulate.run import CONSENT_TOPIC, MEAN_GAP, run_simulation

pytestmark = pytest.mark.kafka

START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_simulated_events_reach_the_ingress_topics(kafka: Settings, group_id: str) -> None:
    report = run_simulation(
        kafka,
        count=200,
        children=15,
        seed=11,
        consents=20,
        rate=500.0,
        start=START,
        progress=LogProgress(220),
    )
    assert report.events == 200 and report.consents == 20
    assert report.rate <= 500 * 1.2

    # The same seed and start give the same records, so exactly what should have arrived is known.
    simulator = Simulator(Population(15, 11, today=START.date()), 11, start=START, mean_gap=MEAN_GAP)
    expected = {e["event_id"]: e for e in simulator.events(200)}
    expected_consents = {c["consent_id"]: c for c in simulator.consent_records(20)}

    agency_of = {kafka.topic(ingress_topic(agency)): agency for agency in AGENCIES}
    consent_topic = kafka.topic(CONSENT_TOPIC)
    codecs = Codecs(registry_for(kafka))
    received: dict[str, tuple[str, bytes, dict[str, Any]]] = {}
    consents: dict[str, tuple[bytes, dict[str, Any]]] = {}
    in_order: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    cons = consumer(kafka, group_id)
    cons.subscribe([*agency_of, consent_topic])
    deadline = time.monotonic() + 60
    try:
        while (len(received) < 200 or len(consents) < 20) and time.monotonic() < deadline:
            for msg in cons.consume(500, timeout=0.5):
                assert msg.error() is None, msg.error()
                if msg.topic() == consent_topic:
                    record = codecs.consent.decode(msg.value())
                    consents[record["consent_id"]] = (msg.key(), record)
                    continue
                event = codecs.event.decode(msg.value())
                received[event["event_id"]] = (msg.topic(), msg.key(), event)
                in_order[(msg.topic(), msg.partition())].append(event)
    finally:
        cons.close()

    assert set(received) == set(expected)
    per_type = Counter(event["event_type"] for _, _, event in received.values())
    assert per_type == report.by_type
    assert set(per_type) == set(EVENT_TYPES)
    per_agency = Counter(agency_of[topic] for topic, _, _ in received.values())
    assert per_agency == report.by_agency and len(per_agency) == 4
    for topic, key, event in received.values():
        assert agency_of[topic] == event["source"]["agency"]
        assert key == f"nhs:{event['child']['nhs_number']}".encode()
        assert event == expected[event["event_id"]]

    assert set(consents) == set(expected_consents)
    for key, record in consents.values():
        assert key == consent_key(record).encode()  # type: ignore[union-attr]
        assert record == expected_consents[record["consent_id"]]

    # One child's events stay in order on the wire: no plan ends before it started.
    for event_type in ("CHILD_PROTECTION_PLAN", "LOOKED_AFTER_STATUS"):
        for events in in_order.values():
            by_child: dict[str, list[str]] = defaultdict(list)
            for event in events:
                if event["event_type"] == event_type:
                    by_child[event["child"]["nhs_number"]].append(event["details"]["change"])
            for changes in by_child.values():
                assert changes == ["STARTED" if i % 2 == 0 else "ENDED" for i in range(len(changes))]
