"""The inbox page without Kafka: what a practitioner reads, withheld parts shown, values escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from starlette.testclient import TestClient
from test_hub_sink_writes import delivered

from broker.hub.sinks.sqlite import SqliteSink
from broker.probes import Health
from sgb.inbox import InboxStore, create_app, rule_descriptions, view


def test_withheld_fields_are_shown_not_silently_missing() -> None:
    event = delivered().to_json()
    shown = view.build(event, event["withheld_fields"], "2026-11-23T08:00:00Z")
    assert shown.title == "Domestic abuse incident"
    assert shown.child_name == "Testy Childe" and shown.born == "1 June 2015"
    assert shown.source == "Police: Metropolitan Police Service"
    assert shown.when == "Fri 20 Nov 2026, 21:30 GMT"
    what = {f.label: f for f in shown.what}
    assert what["Child present"].value == "Yes"
    assert what["Offence types"].withheld and what["Offence types"].value == view.WITHHELD
    assert shown.people_withheld and shown.narrative is not None and shown.narrative.withheld
    assert "Child: NHS number" in shown.withheld and "Narrative" in shown.withheld
    # The confidential address is neither shown nor listed: its existence is not disclosed.
    assert not any("onfidential" in f.label for f in shown.who)
    assert not any("onfidential" in item for item in shown.withheld)


def test_a_full_copy_shows_what_the_mash_may_see() -> None:
    event = delivered("MASH").to_json()
    shown = view.build(event, event["withheld_fields"])
    who = {f.label: f.value for f in shown.who}
    assert who["Confidential address"] == "Refuge Synthetic, Testford, LS2 9ZZ"
    assert shown.narrative is not None and "SECRET-NARRATIVE-1" in shown.narrative.value
    assert shown.people and not shown.people_withheld


def test_generalised_and_missing_values_read_plainly() -> None:
    event = delivered().to_json()
    event["child"]["date_of_birth"] = None
    event["generalised_fields"] = {"child.date_of_birth": "11 years"}
    shown = view.build(event, [])
    assert shown.born == "11 years (generalised by policy)"
    event["child"]["given_name"] = event["child"]["family_name"] = None
    nameless = view.build(event, ["child.given_name", "child.family_name"])
    assert nameless.child_name == "Name withheld by policy"
    assert view.words("SIGNIFICANT_HARM") == "Significant harm" and view.words("CAD-77") == "CAD-77"
    assert view.label("nrm_referral_made") == "NRM referral made"


def _store(tmp_path: Path, *events: object) -> InboxStore:
    sink = SqliteSink(tmp_path / "inbox.db", "SCHOOL_DSL", "100000")
    sink.write(list(events))  # type: ignore[arg-type]
    sink.close()
    return InboxStore(tmp_path / "inbox.db")


def test_page_lists_newest_first_escapes_values_and_explains_the_decision(tmp_path: Path) -> None:
    older = delivered()
    hostile = delivered()
    hostile.record["child"]["given_name"] = "<script>alert(1)</script>"
    object.__setattr__(hostile, "delivered_at", datetime(2026, 11, 23, 9, tzinfo=UTC))
    store = _store(tmp_path, older, hostile)
    rules = rule_descriptions()
    version = next(iter(rules))[0]
    store.put_decisions(
        [
            {
                "event_id": hostile.event_id,
                "audience": "SCHOOL_DSL",
                "organisation": "100000",
                "outcome": "SHARE",
                "reason": None,
                "rule": "F1-school",
                "lawful_basis": "PUBLIC_TASK_SAFEGUARDING",
                "consent_state": None,
                "policy_version": version,
                "decided_at": datetime(2026, 11, 23, 9, tzinfo=UTC),
            }
        ],
        {("audit", 0): 1},
    )
    client = TestClient(create_app(store, "SCHOOL_DSL", "100000", rules=rules))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # no scripts at all
    body = page.text
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert body.index(hostile.event_id) < body.index(older.event_id)  # newest first
    assert "withheld by policy" in body and "School designated safeguarding lead" in body
    detail = client.get(f"/events/{hostile.event_id}").text
    assert "Shared with you" in detail and "F1-school" in detail
    assert "designated safeguarding lead hears before the next school day" in detail
    assert "Public task: safeguarding" in detail
    older_detail = client.get(f"/events/{older.event_id}").text
    assert "is not recorded here yet" in older_detail
    assert client.get("/events/not-an-event").status_code == 404


def test_probes_and_metrics_on_the_page(tmp_path: Path) -> None:
    health = Health("inbox")
    ready = [False]
    health.add_check("audit", lambda: ready[0])
    client = TestClient(create_app(_store(tmp_path), "SCHOOL_DSL", "100000", health=health))
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 503
    assert "catching up" in client.get("/").text
    ready[0] = True
    assert client.get("/readyz").json()["checks"] == {"audit": True}
    assert "Nothing has arrived for this hub yet" in client.get("/").text
    assert client.get("/metrics").status_code == 200
