"""Principle 10 on a real broker: a correction reaches exactly who received the original, and
a re-sent event id is decided once (no second delivery, no second audit record)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from conftest import RunningFilter, read_topic
from factories import domestic_abuse_incident
from test_filter_kafka import audits_for, publish, wait_for

from broker.clients import consumer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import DELIVERY_PREFIX, delivery_topic


def corrected(original: dict[str, Any], kind: str, **changes: Any) -> dict[str, Any]:
    out = {**original, **changes, "event_id": str(uuid.uuid4())}
    out["correction"] = {"kind": kind, "corrects_event_id": original["event_id"]}
    return out


def deliveries(settings: Settings, audience: str, organisation: str, expect: int) -> list[dict[str, Any]]:
    codecs = Codecs(registry_for(settings))
    topic = f"sg.deliver.{audience}.{organisation}.v1"
    return [codecs.event.decode(m.value()) for m in read_topic(settings, topic, expect=expect, timeout=10)]


def every_delivery(settings: Settings, quiet: float = 3.0) -> list[Any]:
    """Every message on every delivery topic of this test (read_committed), until ``quiet`` s pass without one."""
    cons = consumer(settings, f"reader-{uuid.uuid4().hex[:8]}")
    cons.subscribe([f"^{re.escape(settings.topic(DELIVERY_PREFIX))}.*"])
    out: list[Any] = []
    deadline = time.monotonic() + quiet
    try:
        while time.monotonic() < deadline:
            batch = [m for m in cons.consume(100, timeout=0.5) if not m.error()]
            if batch:
                out += batch
                deadline = time.monotonic() + quiet
    finally:
        cons.close()
    return out


def test_amendment_reaches_the_school_with_its_redaction_and_a_resend_is_decided_once(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    counts = running_filter.service.counts
    original = domestic_abuse_incident()
    publish(kafka, original)
    first = audits_for(kafka, 1)
    shared = {(a["audience"], a["organisation"]) for a in first if a["outcome"] == "SHARE"}
    assert ("SCHOOL_DSL", "100000") in shared and ("MASH", "202") in shared

    # The connector sends the same event id again: nothing is decided, delivered or audited twice.
    publish(kafka, original)
    wait_for(lambda: counts["already_decided"] == 1)

    amended = corrected(original, "AMENDED", narrative="SECRET-AMENDED-NARRATIVE")
    publish(kafka, amended)
    audits = audits_for(kafka, 2)  # one audit record per event: the original's and the amendment's
    assert len(audits) == 7 + len(shared)  # a decision per recipient of the original, and nothing else
    told = [a for a in audits if a["event_id"] == amended["event_id"]]
    assert {(a["audience"], a["organisation"]) for a in told} == shared
    assert {a["correction"] for a in told} == {"AMENDED"}
    assert {a["corrects_event_id"] for a in told} == {original["event_id"]}

    school = deliveries(kafka, "school_dsl", "100000", 2)
    assert [d["event_id"] for d in school] == [original["event_id"], amended["event_id"]]
    assert school[1]["correction"] == {"kind": "AMENDED", "corrects_event_id": original["event_id"]}
    assert school[1]["narrative"] is None and school[1]["related_people"] == []  # the school's redaction
    assert school[1]["child"]["given_name"] == original["child"]["given_name"]
    mash = deliveries(kafka, "mash", "202", 2)
    assert mash[1]["narrative"] == "SECRET-AMENDED-NARRATIVE"  # the MASH's: in full
    # Nobody who did not receive the original heard of its amendment.
    topics = {kafka.topic(delivery_topic(a, o)) for a, o in shared}
    assert {str(m.topic()) for m in every_delivery(kafka)} == topics
    # The amendment's own re-send is decided once too.
    publish(kafka, amended)
    wait_for(lambda: counts["already_decided"] == 2)
    assert counts["corrections"] == 1


def test_a_fresh_filter_reads_the_ledger_back_and_routes_a_retraction(
    kafka: Settings, group_id: str, tmp_path: Any
) -> None:
    original = domestic_abuse_incident()
    with RunningFilter(kafka, group_id=group_id, instance="a"):
        publish(kafka, original)
        shared = {(a["audience"], a["organisation"]) for a in audits_for(kafka, 1) if a["outcome"] == "SHARE"}
    fresh = kafka.model_copy(update={"state_dir": tmp_path / "fresh-state"})  # no ledger on disk
    retracted = corrected(original, "RETRACTED")
    with RunningFilter(fresh, group_id=group_id, instance="b") as running:
        publish(kafka, original, retracted)
        audits = audits_for(kafka, 2)
        assert running.service.counts["already_decided"] == 1
    told = [a for a in audits if a["event_id"] == retracted["event_id"]]
    assert {(a["audience"], a["organisation"]) for a in told} == shared
    # (b has keys of its own, so its copies may be on another partition of the school's topic)
    school = deliveries(kafka, "school_dsl", "100000", 2)
    notice = next(d for d in school if d["correction"])
    assert notice["correction"] == {"kind": "RETRACTED", "corrects_event_id": original["event_id"]}
    assert notice["child"]["given_name"] is None and notice["child"]["nhs_number"] is None
    assert notice["narrative"] is None
