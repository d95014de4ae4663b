"""Done means, on a real broker (issue 18): a CIN census return, then the same year's
resubmitted return without one child's child protection plan. The hub that received the plan
(emergency care's flag view) shows it withdrawn by the source; nobody else hears anything, and
the other child's events are untouched."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

from conftest import RunningFilter
from test_connector_la_returns import la_run
from test_corrections_kafka import every_delivery
from test_filter_kafka import audits_for

from broker.hub.sinks import open_sink
from broker.hub.subscriber import Subscriber
from broker.settings import Settings
from connectors.local_authority import synthetic as syn


def test_a_plan_gone_from_the_resubmitted_return_is_withdrawn_at_its_recipients_only(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    rng = random.Random(18)
    planned = syn.CinChild(
        "C1",
        syn.synthetic_upn(rng, "202"),
        "2015-01-01",
        "2024-04-01",
        s47="2024-04-03",
        cpp_start="2024-04-20",
    )
    other = syn.CinChild("C2", syn.synthetic_upn(rng, "202"), "2016-02-02", "2024-05-01", nfa=True)
    syn.write_xref(tmp_path / "xref.csv", ["C1", "C2"], rng)

    def census(folder: str, *kids: syn.CinChild) -> str:
        """Publish one return of 2024 (its own folder) with `sgb connector run`; its summary line."""
        (tmp_path / folder).mkdir()
        path = syn.write_cin(tmp_path / folder / "cin.xml", kids)
        xref = str(tmp_path / "xref.csv")
        return la_run(
            kafka, "--source", str(path), "--format", "cin", "--xref", xref, "--name", "la-cin"
        ).stdout

    first = census("a", planned, other)
    assert "4 published" in first, first
    audits = audits_for(kafka, 4)
    plan_id = next(a["event_id"] for a in audits if a["event_type"] == "CHILD_PROTECTION_PLAN")
    shared = {
        (a["audience"], a["organisation"])
        for a in audits
        if a["event_id"] == plan_id and a["outcome"] == "SHARE"
    }
    assert ("EMERGENCY_CARE", "national") in shared

    resubmitted = syn.CinChild("C1", planned.upn, "2015-01-01", "2024-04-01", s47="2024-04-03")
    second = census("b", resubmitted, other)
    assert "1 published" in second and "(1 retracted)" in second, second
    told = [a for a in audits_for(kafka, 5) if a["correction"]]
    assert {(a["audience"], a["organisation"], a["correction"], a["corrects_event_id"]) for a in told} == {
        (audience, org, "RETRACTED", plan_id) for audience, org in shared
    }
    notice_id = told[0]["event_id"]

    stop = threading.Event()
    for audience, org in shared:
        path = tmp_path / f"{audience}.db"
        Subscriber(kafka, audience, org).run(open_sink(f"sqlite:{path}", audience, org), stop, idle_timeout=3)
        with sqlite3.connect(path) as conn:
            rows = dict(conn.execute("SELECT event_id, correction FROM deliveries").fetchall())
        assert rows[plan_id] == "RETRACTED"  # "Withdrawn by source"
        assert notice_id not in rows
    topics = {
        str(m.topic())
        for m in every_delivery(kafka)
        if dict(m.headers() or [])["sgb.event_id"].decode() == notice_id
    }
    assert topics == {kafka.topic(f"sg.deliver.{a.lower()}.{o}.v1") for a, o in shared}
