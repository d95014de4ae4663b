"""The skeleton flow end to end on a real broker: police event -> filter (F1) -> hub jsonl sink."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import RunningFilter, read_topic, sgb_env
from factories import domestic_abuse_incident

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher


def test_domestic_abuse_incident_reaches_school_minimal_and_mash_full(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    event = domestic_abuse_incident()
    publisher = EventPublisher(kafka, "POLICE")
    publisher.publish(event)
    publisher.flush()

    # One audit record for the event, with exactly one decision per candidate audience.
    audits = read_topic(kafka, "sg.audit.decisions.v1", expect=1)
    codecs = Codecs(registry_for(kafka))
    decided = codecs.audit.decisions(audits[0].value())
    decisions = {d["audience"]: d for d in decided}
    assert len(audits) == 1 and len(decided) == 7 and len(decisions) == 7
    assert decisions["SCHOOL_DSL"]["outcome"] == "SHARE" and decisions["SCHOOL_DSL"]["rule"] == "F1-school"
    assert decisions["MASH"]["outcome"] == "SHARE"
    assert decisions["POLICE_PPU"]["outcome"] == "WITHHOLD" and decisions["POLICE_PPU"]["reason"] == "no_rule"
    assert "narrative" in decisions["SCHOOL_DSL"]["removed_fields"]
    assert all(d["policy_version"].startswith("1.0.0+") for d in decisions.values())

    # The school's hub writes what it received with the command a hub would run.
    inbox = tmp_path / "school.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgb.cli",
            "hub",
            "subscribe",
            "school_dsl",
            "100000",
            "--sink",
            f"jsonl:{inbox}",
            "--idle-exit",
            "3",
        ],
        env=sgb_env(kafka),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b1 (new )?event\(s\) written", result.stdout), result.stdout
    lines = [json.loads(line) for line in inbox.read_text().splitlines()]
    assert len(lines) == 1
    school = lines[0]
    assert school["event_id"] == event["event_id"]
    assert school["child"]["given_name"] == "Testy" and school["child"]["date_of_birth"] == "2015-06-01"
    assert school["details"]["incident_at"] == "2026-11-20T21:30:00Z"
    assert school["details"]["child_present"] is True
    assert (
        school["source"]["organisation"] == "metropolitan"
        and school["source"]["contact"]["reference"] == "CAD-77"
    )
    assert school["narrative"] is None and school["related_people"] == []
    assert school["details"]["offence_types"] == [] and school["child"]["nhs_number"] is None
    assert school["child"]["confidential_address"] is None

    # The MASH gets the full copy, the confidential address included.
    mash = read_topic(kafka, "sg.deliver.mash.202.v1", expect=1)
    assert len(mash) == 1
    full = codecs.event.decode(mash[0].value())
    assert full["child"]["confidential_address"]["line1"] == "Refuge Synthetic"
    assert (
        full["narrative"] == event["narrative"]
        and full["child"]["nhs_number"] == event["child"]["nhs_number"]
    )
    assert full["related_people"][0]["family_name"] == "Synthetic"

    # A second run of the same subscription writes nothing new (offsets were committed).
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgb.cli",
            "hub",
            "subscribe",
            "school_dsl",
            "100000",
            "--sink",
            f"jsonl:{inbox}",
            "--idle-exit",
            "2",
        ],
        env=sgb_env(kafka),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0 and re.search(r"\b0 (new )?event\(s\) written", again.stdout), again.stdout
    assert len(inbox.read_text().splitlines()) == 1


def test_undecodable_event_goes_to_the_dead_letter_topic_and_to_no_one(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    from broker.clients import producer

    prod = producer(kafka)
    prod.produce(
        kafka.topic("sg.ingress.police.v1"), key=b"nhs:9990000000", value=b"\x00\x00\x00\x00\x07garbage"
    )
    prod.produce(kafka.topic("sg.ingress.police.v1"), key=b"nhs:9990000000", value=b"not avro at all")
    prod.flush(10)
    letters = read_topic(kafka, "sg.dlq.v1", expect=2)
    assert len(letters) == 2
    headers = [dict(m.headers()) for m in letters]
    assert all(h["sgb.component"] == b"filter" for h in headers)
    assert all(h["sgb.origin.topic"] == kafka.topic("sg.ingress.police.v1").encode() for h in headers)
    assert {h["sgb.origin.offset"] for h in headers} == {b"0", b"1"}
    reasons = sorted(h["sgb.reason"].decode() for h in headers)
    assert "magic byte" in reasons[0] or "magic byte" in reasons[1]
    codecs = Codecs(registry_for(kafka))
    record = codecs.dead_letter.decode(letters[0].value())
    assert record["payload"] in (b"\x00\x00\x00\x00\x07garbage", b"not avro at all")
    assert read_topic(kafka, "sg.audit.decisions.v1", expect=1, timeout=3) == []


def test_a_copy_with_nothing_withheld_is_the_ingress_event_byte_for_byte(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    event = domestic_abuse_incident(risk="SIGNIFICANT_HARM")
    publisher = EventPublisher(kafka, "POLICE")
    publisher.publish(event)
    publisher.flush()
    ingress = read_topic(kafka, "sg.ingress.police.v1", expect=1)
    mash = read_topic(kafka, "sg.deliver.mash.202.v1", expect=1)
    assert len(mash) == 1 and mash[0].value() == ingress[0].value()
    school = read_topic(kafka, "sg.deliver.school_dsl.100000.v1", expect=1)
    assert len(school) == 1 and school[0].value() != ingress[0].value()
