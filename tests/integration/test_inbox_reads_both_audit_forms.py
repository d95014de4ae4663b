"""The inbox's ``--read-audit`` reader keeps this hub's decisions from both audit forms on the
topic: the AuditRecord the filter writes now (one per event, every decision in it) and the
older AuditDecision (one per decision), which the topic keeps (issue 21, item 1)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs, record_serde
from broker.wire.registry import registry_for
from sgb.inbox.feed import AuditReader
from sgb.inbox.store import InboxStore

DECIDED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def entry(audience: str, organisation: str, outcome: str, reason: str | None) -> dict[str, Any]:
    return {
        "audience": audience,
        "organisation": organisation,
        "outcome": outcome,
        "reason": reason,
        "rule": None,
        "lawful_basis": None,
        "consent_state": "NO_RECORD",
        "removed_fields": [],
        "transformed_fields": [],
        "delivery_topic": None,
        "organisation_source": "EVENT",
    }


def test_the_audit_reader_keeps_this_hubs_decisions_from_both_forms(kafka: Settings, tmp_path: Path) -> None:
    registry = registry_for(kafka)
    codecs = Codecs(registry)
    new = codecs.audit.encode(
        {
            "event_id": "evt-new",
            "event_type": "DOMESTIC_ABUSE_INCIDENT",
            "policy_version": "1.0.0+x",
            "decided_at": DECIDED,
            "decisions": [
                entry("SCHOOL_DSL", "100000", "WITHHOLD", "recipient_not_onboarded"),
                entry("MASH", "202", "WITHHOLD", "no_rule"),
            ],
            "chain": f"{kafka.topic('sg.ingress.police.v1')}:0",
            "sequence": 0,
            "previous_hash": "0" * 64,
            "record_hash": "0" * 64,
        }
    )
    old = record_serde(registry, "AuditDecision").encode(
        {
            **entry("SCHOOL_DSL", "100000", "WITHHOLD", "consent_not_given"),
            "event_id": "evt-old",
            "event_type": "SCHOOL_SAFEGUARDING_CONCERN",
            "policy_version": "1.0.0+w",
            "decided_at": DECIDED,
        }
    )
    assert [d["event_id"] for d in codecs.audit.decisions(old)] == ["evt-old"]
    prod = producer(kafka)
    for key, value in ((b"evt-old", old), (b"evt-new", new)):
        prod.produce(kafka.topic("sg.audit.decisions.v1"), key=key, value=value)
    assert prod.flush(10) == 0

    store = InboxStore(tmp_path / "inbox.db")
    delivery_topic = kafka.topic("sg.deliver.school_dsl.100000.v1")
    reader = AuditReader(kafka, "SCHOOL_DSL", "100000", store, delivery_topic)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert reader.caught_up.wait(60)
        found: dict[str, Any] = {}
        for _ in range(100):
            found = store.decisions(["evt-new", "evt-old"], "SCHOOL_DSL", "100000")
            if len(found) == 2:
                break
            stop.wait(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert {k: v.reason for k, v in found.items()} == {
        "evt-new": "recipient_not_onboarded",
        "evt-old": "consent_not_given",
    }
    assert store.decisions(["evt-new"], "MASH", "202") == {}  # another hub's decision is not kept
    assert store.withheld_counts("SCHOOL_DSL", "100000") == {
        "recipient_not_onboarded": 1,
        "consent_not_given": 1,
    }
