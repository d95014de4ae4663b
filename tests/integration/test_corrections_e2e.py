"""Done means, on a real broker: an attendance shared with a GP and a MASH and then cancelled
by A11 leaves both hubs' stores showing it withdrawn, and nobody else received anything."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from conftest import RunningFilter, sgb_env
from factories import domestic_abuse_incident, event
from test_corrections_kafka import every_delivery
from test_filter_kafka import audits_for, publish, wait_for
from test_hub_sinks import postgres_dsn, postgres_server  # noqa: F401 (fixtures)

from broker.hub.sinks import open_sink
from broker.hub.subscriber import Subscriber
from broker.settings import Settings
from connectors.health import Hl7Mapper, Hl7Message
from connectors.health import synthetic as syn
from connectors.runtime.records import SourceRecord
from schemas.identifiers import synthetic_nhs_number


def hl7_event(index: int, trigger: str, nhs: str) -> dict[str, Any]:
    text = syn.adt_message(index, random.Random(index), trigger=trigger, nhs_number=nhs)
    record = SourceRecord(
        "health-e2e", "mllp://ed", "mllp:ed", 0, f"message {trigger}", Hl7Message(text), text.encode()
    )
    return Hl7Mapper()(record)


def stored(path: Path) -> dict[str, tuple[str | None, str]]:
    with sqlite3.connect(path) as conn:
        return {
            r[0]: (r[1], r[2]) for r in conn.execute("SELECT event_id, correction, event FROM deliveries")
        }


def test_an_a11_cancellation_leaves_the_gp_and_the_mash_showing_it_withdrawn(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    nhs = synthetic_nhs_number(random.Random(18))
    plan = event(
        "CHILD_PROTECTION_PLAN",
        nhs_number=nhs,
        detail_values={"change": "STARTED", "responsible_local_authority_code": "202"},
    )
    publish(kafka, plan)
    wait_for(lambda: running_filter.service.counts["batches"] >= 1)
    attendance = hl7_event(7, "A04", nhs)
    publish(kafka, attendance)
    audits = audits_for(kafka, 2)
    shared = {
        (a["audience"], a["organisation"])
        for a in audits
        if a["event_id"] == attendance["event_id"] and a["outcome"] == "SHARE"
    }
    gp = next(org for audience, org in shared if audience == "GP")
    assert {audience for audience, _ in shared} == {"GP", "MASH"} and ("MASH", "202") in shared

    cancel = hl7_event(7, "A11", nhs)
    assert cancel["correction"] == {"kind": "RETRACTED", "corrects_event_id": attendance["event_id"]}
    publish(kafka, cancel)
    told = [a for a in audits_for(kafka, 3) if a["event_id"] == cancel["event_id"]]
    assert {(a["audience"], a["organisation"], a["correction"]) for a in told} == {
        (audience, org, "RETRACTED") for audience, org in shared
    }

    stop = threading.Event()
    for audience, org in shared:
        path = tmp_path / f"{audience}.db"
        Subscriber(kafka, audience, org).run(open_sink(f"sqlite:{path}", audience, org), stop, idle_timeout=3)
        rows = stored(path)
        assert rows[attendance["event_id"]][0] == "RETRACTED"  # withdrawn by source
        assert cancel["event_id"] not in rows  # the notice updated the row; it is not a row of its own
    # Nobody else heard of the attendance or of its cancellation.
    about = {attendance["event_id"], cancel["event_id"]}
    topics = {
        str(m.topic())
        for m in every_delivery(kafka)
        if dict(m.headers() or [])["sgb.event_id"].decode() in about
    }
    assert topics == {kafka.topic(f"sg.deliver.{a.lower()}.{o}.v1") for a, o in shared}
    assert gp


def test_sgb_erase_leaves_no_copy_of_the_child_in_any_hub_sink(
    kafka: Settings,
    running_filter: RunningFilter,
    tmp_path: Path,
    postgres_dsn: str,  # noqa: F811 (the fixture)
) -> None:
    incident = domestic_abuse_incident(born=date(2023, 3, 1))  # under 5: health visiting too
    nhs = incident["child"]["nhs_number"]
    publish(kafka, incident)
    audits = audits_for(kafka, 1)
    shared = {(a["audience"], a["organisation"]) for a in audits if a["outcome"] == "SHARE"}
    assert {a for a, _ in shared} == {"SCHOOL_DSL", "MASH", "HEALTH_SAFEGUARDING"}
    amended = {**incident, "event_id": str(uuid.uuid4()), "narrative": "SECRET-AMENDED-NARRATIVE"}
    amended["correction"] = {"kind": "AMENDED", "corrects_event_id": incident["event_id"]}
    publish(kafka, amended)
    audits_for(kafka, 2)

    sinks = {"SCHOOL_DSL": f"jsonl:{tmp_path / 'school.jsonl'}", "MASH": f"sqlite:{tmp_path / 'mash.db'}"}
    sinks["HEALTH_SAFEGUARDING"] = f"postgres:{postgres_dsn}"
    stop = threading.Event()
    for audience, org in shared:  # the hubs have the original and its amendment
        Subscriber(kafka, audience, org).run(open_sink(sinks[audience], audience, org), stop, idle_timeout=3)
    assert "SECRET-AMENDED-NARRATIVE" in sink_text(sinks["MASH"])

    erased = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "erase", "--child", f"nhs:{nhs}", "--yes"],
        env=sgb_env(kafka),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert erased.returncode == 0, erased.stderr
    assert "1 ERASED correction(s) sent" in erased.stdout and nhs not in erased.stdout + erased.stderr
    told = [a for a in audits_for(kafka, 3) if a["correction"] == "ERASED"]
    assert {(a["audience"], a["organisation"]) for a in told} == shared

    for audience, org in shared:
        Subscriber(kafka, audience, org).run(open_sink(sinks[audience], audience, org), stop, idle_timeout=3)
        text = sink_text(sinks[audience])
        assert incident["event_id"] in text  # the event id and the fact of erasure stay
        for secret in (nhs, "Testy", "Childe", "Synthetic Row", "Refuge Synthetic", "SECRET-"):
            assert secret not in text, (audience, "still holds a field of the erased child")


def sink_text(spec: str) -> str:
    """Everything a sink holds, as text."""
    kind, _, where = spec.partition(":")
    if kind == "jsonl":
        return Path(where).read_text()
    if kind == "sqlite":
        with sqlite3.connect(where) as conn:
            return json.dumps(conn.execute("SELECT * FROM deliveries").fetchall())
    import psycopg

    with psycopg.connect(where) as conn:
        return json.dumps(
            [list(map(str, r)) for r in conn.execute("SELECT * FROM sgb_deliveries").fetchall()]
        )
