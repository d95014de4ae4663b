"""The filter on a real broker: consent and status state, exactly-once under kill -9 and
rebalance, policy reload, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import RunningFilter, read_topic, sgb_env
from factories import distinct_children, domestic_abuse_incident, event

import schemas
from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher
from consent.engine import Engine
from consent.filter.service import watermarks as _watermarks
from consent.policy import load
from consent.state import ChildState
from schemas.child_keys import consent_key
from schemas.topics import load_declaration


def publish(settings: Settings, *events: dict[str, Any]) -> None:
    by_agency: dict[str, EventPublisher] = {}
    for ev in events:
        agency = ev["source"]["agency"]
        if agency not in by_agency:
            by_agency[agency] = EventPublisher(settings, agency)
        publisher = by_agency[agency]
        publisher.publish(ev)
    for publisher in by_agency.values():
        publisher.flush()


def publish_consent(settings: Settings, nhs: str, state: str, recorded: datetime) -> None:
    codecs = Codecs(registry_for(settings))
    record = {
        "consent_id": f"c-{state}-{recorded.isoformat()}",
        "nhs_number": nhs,
        "la_child_id": None,
        "local_authority_code": "202",
        "audience": "FAMILY_HELP",
        "purpose": "FAMILY_HELP",
        "state": state,
        "given_by": "PARENT",
        "recorded_at": recorded,
        "recorded_by": "202",
    }
    prod = producer(settings)
    prod.produce(
        settings.topic("sg.consent.v1"),
        key=consent_key(record).encode(),  # type: ignore[union-attr]
        value=codecs.consent.encode(record),
    )
    prod.flush(10)


def audits_for(settings: Settings, events: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every decision in the audit records of ``events`` events (one record per event)."""
    codecs = Codecs(registry_for(settings))
    return [
        decision
        for m in read_topic(settings, "sg.audit.decisions.v1", expect=events, timeout=timeout)
        for decision in codecs.audit.decisions(m.value())
    ]


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def family_help(audits: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    return next(a for a in audits if a["event_id"] == event_id and a["audience"] == "FAMILY_HELP")


def test_withdrawal_then_event_withholds_and_late_older_consent_does_not_replace(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    counts = running_filter.service.counts
    first = event("SCHOOL_SAFEGUARDING_CONCERN")
    nhs = first["child"]["nhs_number"]
    publish_consent(kafka, nhs, "GIVEN", datetime(2026, 11, 2, tzinfo=UTC))
    wait_for(lambda: counts["consent_records"] >= 1)
    publish(kafka, first)
    assert family_help(audits_for(kafka, 1), first["event_id"])["outcome"] == "SHARE"

    publish_consent(kafka, nhs, "WITHDRAWN", datetime(2026, 11, 3, tzinfo=UTC))
    publish_consent(kafka, nhs, "GIVEN", datetime(2026, 11, 1, tzinfo=UTC))  # arrives late, recorded earlier
    wait_for(lambda: counts["consent_records"] >= 3)
    second = event("SCHOOL_SAFEGUARDING_CONCERN", nhs_number=nhs)
    publish(kafka, second)
    decision = family_help(audits_for(kafka, 2), second["event_id"])
    assert decision["outcome"] == "WITHHOLD" and decision["reason"] == "consent_not_given"
    assert decision["consent_state"] == "WITHDRAWN"
    # The losing late record was followed by the record in force, so that compaction keeps the newest.
    wait_for(lambda: counts["consent_republished"] == 1)
    last = read_topic(kafka, "sg.consent.v1", expect=4)[-1]
    assert Codecs(registry_for(kafka)).consent.decode(last.value())["state"] == "WITHDRAWN"


def test_flags_derived_by_one_filter_are_rebuilt_by_a_fresh_one(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    plan = event(
        "CHILD_PROTECTION_PLAN",
        detail_values={"change": "STARTED", "responsible_local_authority_code": "203"},
    )
    with RunningFilter(kafka, group_id=group_id, instance="a"):
        publish(kafka, plan)
        statuses = read_topic(kafka, "sg.status.v1", expect=1)
    assert len(statuses) == 1
    status = Codecs(registry_for(kafka)).status.decode(statuses[0].value())
    assert status["child_protection_plan_active"] is True
    assert status["child_protection_plan_local_authority_code"] == "203"

    fresh = kafka.model_copy(update={"state_dir": tmp_path / "fresh-state"})  # nothing on disk
    attendance = event("EMERGENCY_ATTENDANCE", nhs_number=plan["child"]["nhs_number"])
    with RunningFilter(fresh, group_id=group_id, instance="b"):
        publish(kafka, attendance)
        audits = audits_for(kafka, 2)
    mash = next(a for a in audits if a["event_id"] == attendance["event_id"] and a["audience"] == "MASH")
    assert mash["outcome"] == "SHARE" and mash["organisation"] == "203"


def expected_deliveries(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    organisations = load_declaration().deliveries.organisations
    engine = Engine(
        load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: o in organisations.get(str(a), [])
    )
    out: Counter[tuple[str, str]] = Counter()
    for ev in events:
        for decision in engine.decide(ev, ChildState()):
            if decision.topic:
                out[(decision.topic, ev["event_id"])] += 1
    return out


def delivered(settings: Settings, expect: int) -> Counter[tuple[str, str]]:
    from broker.clients import consumer

    codecs = Codecs(registry_for(settings))
    cons = consumer(settings, f"check-{os.getpid()}-{time.monotonic_ns()}")
    cons.subscribe([f"^{settings.topic_prefix.replace('.', '[.]')}sg[.]deliver[.].*"])
    out: Counter[tuple[str, str]] = Counter()
    deadline = time.monotonic() + 60
    try:
        while sum(out.values()) < expect and time.monotonic() < deadline:
            for msg in cons.consume(500, timeout=0.5):
                if not msg.error():
                    logical = msg.topic()[len(settings.topic_prefix) :]
                    out[(logical, codecs.event.decode(msg.value())["event_id"])] += 1
        for msg in cons.consume(500, timeout=2):  # anything beyond what was expected is a duplicate
            if not msg.error():
                logical = msg.topic()[len(settings.topic_prefix) :]
                out[(logical, codecs.event.decode(msg.value())["event_id"])] += 1
    finally:
        cons.close()
    return out


def start_filter(settings: Settings, group: str, instance: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
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
            "20",
        ],
        env=sgb_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def audit_count(settings: Settings) -> int:
    from confluent_kafka import TopicPartition

    from broker.clients import consumer

    cons = consumer(settings, "count")
    topic = settings.topic("sg.audit.decisions.v1")
    metadata = cons.list_topics(topic, timeout=10)
    total = 0
    for partition in metadata.topics[topic].partitions:
        low, high = _watermarks(cons, TopicPartition(topic, partition))
        total += high - low
    cons.close()
    return total


def corrections_of(events: list[dict[str, Any]], every: int = 10) -> list[dict[str, Any]]:
    """An AMENDED or RETRACTED correction of every ``every``-th event (principle 10)."""
    out = []
    for i, original in enumerate(events[::every]):
        kind = "AMENDED" if i % 2 else "RETRACTED"
        correction = {**original, "event_id": str(uuid.uuid4()), "narrative": f"Amended {i}"}
        correction["correction"] = {"kind": kind, "corrects_event_id": original["event_id"]}
        out.append(correction)
    return out


def check_exactly_once(
    settings: Settings,
    events: list[dict[str, Any]],
    logs: list[Path],
    corrections: list[dict[str, Any]] | None = None,
) -> None:
    """Every event decided once (one audit record of 7 decisions), every correction told once to
    each recipient of its original (one record of those decisions), every delivery made once."""
    expected = expected_deliveries(events)
    recipients: dict[str, list[str]] = {}
    for topic, event_id in expected:
        recipients.setdefault(event_id, []).append(topic)
    corrections = corrections or []
    for correction in corrections:
        for topic in recipients.get(correction["correction"]["corrects_event_id"], []):
            expected[(topic, correction["event_id"])] += 1
    told = sum(len(recipients.get(c["correction"]["corrects_event_id"], [])) for c in corrections)
    corrected = sum(1 for c in corrections if recipients.get(c["correction"]["corrects_event_id"]))
    audits = audits_for(settings, len(events) + corrected, timeout=180)
    per_event = Counter(a["event_id"] for a in audits if not a["correction"])
    letters = read_topic(settings, "sg.dlq.v1", expect=1, timeout=1)
    tails = "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]) for log in logs)
    assert len(audits) == len(events) * 7 + told, (
        f"{len(audits)} audit records for {len(events)} events; {len(letters)} dead letters\n{tails}"
    )
    assert set(per_event.values()) == {7}
    got = delivered(settings, sum(expected.values()))
    assert got == expected, "deliveries lost or duplicated"


def test_kill_minus_9_mid_batch_loses_and_duplicates_nothing(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    events = distinct_children(
        [
            domestic_abuse_incident(
                risk=("SIGNIFICANT_HARM" if i % 5 == 0 else "NEEDS_SUPPORT"),
                school=["100000", "100001", None, "999999"][i % 4],
            )
            for i in range(4000)
        ]
    )
    corrections = corrections_of(events)  # published after their originals, on the same partitions
    publish(kafka, *events, *corrections)
    log = tmp_path / "filter.log"
    first = start_filter(kafka, group_id, "one", log)
    wait_for(lambda: audit_count(kafka) > 0, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert audit_count(kafka) < len(events), "the filter finished before it could be killed"
    second = start_filter(kafka, group_id, "one", log)  # same instance: fences the zombie's transaction
    try:
        check_exactly_once(kafka, events, [log], corrections)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)


def test_two_filters_share_the_work_and_one_dies(kafka: Settings, group_id: str, tmp_path: Path) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start_filter(kafka, group_id, "a", logs[0])
    b = start_filter(kafka, group_id, "b", logs[1])
    try:

        def assigned(log: Path) -> int:
            lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
            return sum(x.get("count", 0) for x in lines if x.get("event") == "partitions assigned")

        def both_working() -> bool:
            for proc, log in zip((a, b), logs, strict=True):
                assert proc.poll() is None, f"filter {log.stem} exited:\n" + log.read_text()[-3000:]
            return assigned(logs[0]) > 0 and assigned(logs[1]) > 0

        wait_for(both_working, timeout=120)
        events = distinct_children([domestic_abuse_incident() for _ in range(1500)])
        publish(kafka, *events[:750])
        wait_for(lambda: audit_count(kafka) > 0, timeout=60)
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        publish(kafka, *events[750:])
        check_exactly_once(kafka, events, logs)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)


def test_sigterm_stops_cleanly_with_a_summary(kafka: Settings, group_id: str, tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "f.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", "filter", "run", "--group", group_id, "--metrics-port", str(port)],
        env=sgb_env(kafka),
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        text=True,
    )
    wait_for(lambda: "filter running" in log.read_text(), timeout=60)
    publish(kafka, domestic_abuse_incident())
    assert len(audits_for(kafka, 1)) == 7
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as ready:
        assert ready.status == 200

    def decisions() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            return str(page.read().decode())

    wait_for(
        lambda: (
            'sgb_filter_decisions_total{audience="SCHOOL_DSL",outcome="SHARE",reason="granted"} 1.0'
            in decisions()
        ),
        timeout=20,
    )
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "filter stopped: 2 shared, 5 withheld, 0 dead-lettered." in out


def test_policy_reload_without_restart(kafka: Settings, group_id: str, tmp_path: Path) -> None:
    from consent.policy import BASELINE

    policy = tmp_path / "policy.yaml"
    policy.write_text(BASELINE.read_text())
    with RunningFilter(kafka, policy_path=policy, group_id=group_id, instance="r"):
        before = domestic_abuse_incident()
        publish(kafka, before)
        first = audits_for(kafka, 1)
        text = BASELINE.read_text().replace(
            "audience: SCHOOL_DSL\n    grant: [NAME, DATE_OF_BIRTH, CASE_DETAIL]",
            "audience: SCHOOL_DSL\n    grant: [NAME]",
        )
        policy.write_text(text)
        time.sleep(1.0)
        after = domestic_abuse_incident()
        publish(kafka, after)
        second = [a for a in audits_for(kafka, 2) if a["event_id"] == after["event_id"]]
    v1 = {a["policy_version"] for a in first}
    v2 = {a["policy_version"] for a in second}
    assert len(v1) == 1 and len(v2) == 1 and v1 != v2
    school = next(a for a in second if a["audience"] == "SCHOOL_DSL")
    assert "details.child_present" in school["removed_fields"]
