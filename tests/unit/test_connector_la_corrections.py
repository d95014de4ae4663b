"""Local-authority returns that correct earlier ones (issue 18, POLICY.md principle 10): a fact
that changed is AMENDED, one that a complete return of the same scope no longer has is
RETRACTED, and a partial return or a child held back withdraws nothing.

Each return runs through the real file loop (FileConnector) with the snapshot store on disk
and an in-memory delivery that keeps what would have been published."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.security.key_directory import key_provider
from broker.settings import Settings
from connectors.assembly import dry_run_file_connector, snapshot_parts
from connectors.local_authority import LaProfile
from connectors.local_authority import parts as la_parts
from connectors.local_authority import synthetic as syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS, MISSING_COLUMNS
from connectors.runtime.dry_run import DryRunDelivery, MemoryCheckpoints
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery
from connectors.runtime.summary import Summary

UPN = syn.synthetic_upn(random.Random(18), "202")
UPN2 = syn.synthetic_upn(random.Random(19), "202")


@dataclass
class Recording(DryRunDelivery):
    """The dry run's delivery (every event encoded against the schema), keeping the events."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        super().publish(record, event)
        self.events.append(event)


def run_return(
    state: Path, source: Path, fmt: str = "cin", period: str | None = None, keys: Path | None = None
) -> tuple[list[dict[str, Any]], Summary]:
    """One return through the file loop; what was published and the run's summary."""
    parts = la_parts(fmt, LaProfile(la_code="202"), period=period)
    store = SnapshotStore(state, keys=key_provider(keys) if keys else None)
    reader, mapper = snapshot_parts("local_authority", parts.reader, parts.mapper, store)
    recording = Recording()
    runner = FileConnector("la-test", reader, mapper, SnapshotDelivery(recording, store), MemoryCheckpoints())
    return recording.events, runner.run_batch(source, threading.Event())


def cin(folder: Path, *kids: syn.CinChild, year: str | None = "2024") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return syn.write_cin(folder / f"cin-{len(list(folder.iterdir()))}.xml", kids, year=year)


def plan_child(**kw: Any) -> syn.CinChild:
    return syn.CinChild("C1", UPN, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-20", **kw)


OTHER = syn.CinChild("C2", UPN2, "2016-02-02", "2024-05-01", nfa=True)


def described(events: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
    """(type, correction kind, change); a retraction is a notice with blank details: no change."""
    out = []
    for e in events:
        kind = (e.get("correction") or {}).get("kind")
        out.append((e["event_type"], kind, None if kind == "RETRACTED" else e["details"].get("change")))
    return out


def test_a_changed_plan_is_amended_naming_the_event_published_for_it(tmp_path: Path) -> None:
    first, _ = run_return(tmp_path / "state", cin(tmp_path / "in", plan_child()))
    plan = next(e for e in first if e["event_type"] == "CHILD_PROTECTION_PLAN")
    again, summary = run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(abuse="PHY")))
    assert described(again) == [("CHILD_PROTECTION_PLAN", "AMENDED", "STARTED")]
    amended = again[0]
    assert amended["correction"]["corrects_event_id"] == plan["event_id"]
    assert amended["event_id"] != plan["event_id"]
    assert amended["details"]["category_of_abuse"] == "PHYSICAL_ABUSE"  # the full new content
    assert summary.corrections == {"AMENDED": 1}
    assert "1 of them correction(s) of earlier events (1 amended)" in summary.line()
    # The same return again: nothing new, and the amendment is not told twice.
    assert run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(abuse="PHY")))[0] == []


def test_a_plan_missing_from_a_complete_return_of_the_same_year_is_retracted(tmp_path: Path) -> None:
    first, _ = run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(), OTHER))
    plan = next(e for e in first if e["event_type"] == "CHILD_PROTECTION_PLAN")
    # The resubmitted return: the child's plan is gone (no end date: not ended, withdrawn).
    without = syn.CinChild("C1", UPN, "2015-01-01", "2024-04-01", s47="2024-04-03")
    again, summary = run_return(tmp_path / "state", cin(tmp_path / "in", without, OTHER))
    assert described(again) == [("CHILD_PROTECTION_PLAN", "RETRACTED", None)]
    notice = again[0]
    assert notice["correction"]["corrects_event_id"] == plan["event_id"]
    assert notice["child"]["la_child_id"] == "C1" and notice["child"]["upn"] is None  # key only
    assert notice["details"]["category_of_abuse"] is None  # metadata only
    assert summary.corrections == {"RETRACTED": 1}
    # Withdrawn once: the same return again sends nothing.
    assert run_return(tmp_path / "state", cin(tmp_path / "in", without, OTHER))[0] == []
    # The plan comes back: it is restored, as an amendment of the original.
    back, _ = run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(), OTHER))
    assert described(back) == [("CHILD_PROTECTION_PLAN", "AMENDED", "STARTED")]
    assert back[0]["correction"]["corrects_event_id"] == plan["event_id"]


def test_an_end_date_taken_back_retracts_the_ended_event_only(tmp_path: Path) -> None:
    run_return(tmp_path / "state", cin(tmp_path / "in", plan_child()))
    ended, _ = run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(cpp_end="2024-09-30")))
    assert described(ended) == [("CHILD_PROTECTION_PLAN", None, "ENDED")]
    again, _ = run_return(tmp_path / "state", cin(tmp_path / "in", plan_child()))
    assert described(again) == [("CHILD_PROTECTION_PLAN", "RETRACTED", None)]
    assert again[0]["correction"]["corrects_event_id"] == ended[0]["event_id"]


def test_next_years_return_withdraws_nothing_of_this_years(tmp_path: Path) -> None:
    run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(), OTHER))
    assert run_return(tmp_path / "state", cin(tmp_path / "in", OTHER, year="2025"))[0] == []


def test_a_return_that_does_not_say_its_year_withdraws_nothing(tmp_path: Path) -> None:
    run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(), OTHER, year=None))
    assert run_return(tmp_path / "state", cin(tmp_path / "in", OTHER, year=None))[0] == []


def test_a_child_held_back_in_this_return_keeps_its_facts(tmp_path: Path) -> None:
    run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(), OTHER))
    # Its plan now has a category the census does not know: dead-lettered, and the child waits.
    broken = syn.CinChild(
        "C1", UPN, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-21", abuse="ZZZ"
    )
    again, summary = run_return(tmp_path / "state", cin(tmp_path / "in", broken, OTHER))
    assert again == [] and summary.counts["dead_lettered"] == 1
    assert not summary.corrections


def test_a_record_that_says_no_child_holds_back_every_withdrawal(tmp_path: Path) -> None:
    run_return(tmp_path / "state", cin(tmp_path / "in", plan_child(), OTHER))
    nameless = syn.CinChild("", UPN, "2015-01-01", "2024-04-01")
    again, summary = run_return(tmp_path / "state", cin(tmp_path / "in", nameless, OTHER))
    assert again == [] and summary.counts["dead_lettered"] == 1


def test_a_referral_that_moved_on_to_section_47_is_superseded_not_withdrawn(tmp_path: Path) -> None:
    assessed = syn.CinChild("C3", UPN, "2015-01-01", "2024-04-01", assessment="2024-04-02")
    first, _ = run_return(tmp_path / "state", cin(tmp_path / "in", assessed))
    assert [e["details"]["decision"] for e in first] == ["SECTION_17_ASSESSMENT"]
    escalated = syn.CinChild("C3", UPN, "2015-01-01", "2024-04-01", assessment="2024-04-02", s47="2024-04-05")
    again, _ = run_return(tmp_path / "state", cin(tmp_path / "in", escalated))
    assert described(again) == [("REFERRAL_OUTCOME", None, None), ("STRATEGY_DISCUSSION", None, None)]
    assert again[0]["details"]["decision"] == "SECTION_47_ENQUIRY"


# -- SSDA903 -------------------------------------------------------------------------------------
def episodes(folder: Path, *rows: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    syn.write_csv(
        folder / "header.csv",
        HEADER_COLUMNS,
        [{"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012"}, {"CHILD": "L2", "SEX": "2", "DOB": "2010-05-05"}],
    )
    return syn.write_csv(folder / "episodes.csv", EPISODE_COLUMNS, rows)


def episode(child: str, legal: str = "C2") -> dict[str, str]:
    return {"CHILD": child, "DECOM": "01/04/2023", "RNE": "S", "LS": legal, "CIN": "N1", "PLACE": "U1"}


def test_ssda903_changed_period_amended_and_vanished_period_retracted(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first, _ = run_return(state, episodes(tmp_path / "a", episode("L1"), episode("L2")), "ssda903", "2024")
    ids = {e["child"]["la_child_id"]: e["event_id"] for e in first}
    again, summary = run_return(state, episodes(tmp_path / "b", episode("L1", "C1")), "ssda903", "2024")
    assert sorted(
        (e["child"]["la_child_id"], e["correction"]["kind"], e["correction"]["corrects_event_id"])
        for e in again
    ) == [("L1", "AMENDED", ids["L1"]), ("L2", "RETRACTED", ids["L2"])]
    assert next(e for e in again if e["correction"]["kind"] == "AMENDED")["details"]["legal_status"] == "C1"
    assert summary.corrections == {"AMENDED": 1, "RETRACTED": 1}


def test_ssda903_extract_without_its_episodes_table_withdraws_no_period_of_care(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_return(state, episodes(tmp_path / "a", episode("L1"), episode("L2")), "ssda903", "2024")
    partial = tmp_path / "b"
    partial.mkdir()
    syn.write_csv(partial / "header.csv", HEADER_COLUMNS, [{"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012"}])
    syn.write_csv(
        partial / "missing.csv", MISSING_COLUMNS, [{"CHILD": "L1", "MISSING": "M", "MIS_START": "2023-05-01"}]
    )
    again, summary = run_return(state, partial, "ssda903", "2024")
    assert described(again) == [("MISSING_EPISODE", None, "REPORTED")]
    assert not summary.corrections


def test_ssda903_child_held_back_or_no_period_withdraws_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_return(state, episodes(tmp_path / "a", episode("L1"), episode("L2")), "ssda903", "2024")
    folder = episodes(tmp_path / "b", episode("L1")).parent
    with (folder / "episodes.csv").open("a", encoding="utf-8") as fh:
        fh.write("L2,01/04/2023,S\n")  # L2's row is cut short: L2 is held back
    again, summary = run_return(state, folder, "ssda903", "2024")
    assert again == [] and summary.counts["dead_lettered"] == 1
    # Without --period the extract does not say which return it is: it withdraws nothing.
    other = tmp_path / "other-state"
    run_return(other, episodes(tmp_path / "c", episode("L1"), episode("L2")), "ssda903")
    assert run_return(other, episodes(tmp_path / "d", episode("L1")), "ssda903")[0] == []


def test_a_dry_run_counts_the_corrections_a_run_would_send_and_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "sgb")
    state = settings.connector_dir("la-test")
    run_return(state, cin(tmp_path / "in", plan_child(), OTHER), keys=settings.keys_dir)
    log = (state / "snapshot.log").read_bytes()
    without = syn.CinChild("C1", UPN, "2015-01-01", "2024-04-01", s47="2024-04-03")
    assessed = syn.CinChild(
        "C2", UPN2, "2016-02-02", "2024-05-01", assessment="2024-05-02"
    )  # outcome moved on
    path = cin(tmp_path / "next", without, assessed)
    summary, would = dry_run_file_connector(
        settings, "local_authority", path, la_parts("cin", LaProfile()), "la-test"
    )
    assert summary.corrections == {"RETRACTED": 1} and would.published == 2  # C1's plan; C2's new outcome
    assert "(1 retracted)" in summary.line()
    assert (state / "snapshot.log").read_bytes() == log  # a dry run moves nothing


def test_a_run_stopped_among_its_withdrawals_resumes_them_and_sends_none_twice(tmp_path: Path) -> None:
    state = tmp_path / "state"
    kids = [syn.CinChild(f"C{i}", UPN, "2015-01-01", "2024-04-01", cpp_start="2024-04-20") for i in range(4)]
    run_return(state, cin(tmp_path / "in", *kids, OTHER))
    path = cin(tmp_path / "next", OTHER)  # every plan withdrawn: four notices after OTHER's record
    checkpoints, stop = MemoryCheckpoints(), threading.Event()

    class StopAtFirst(Recording):
        def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
            super().publish(record, event)
            stop.set()  # as SIGTERM would: the open batch is committed and checkpointed

    told = []
    for delivery in (StopAtFirst(), Recording()):
        stop.clear()
        parts = la_parts("cin", LaProfile(la_code="202"))
        store = SnapshotStore(state)
        reader, mapper = snapshot_parts("local_authority", parts.reader, parts.mapper, store)
        runner = FileConnector("la-test", reader, mapper, SnapshotDelivery(delivery, store), checkpoints)
        runner.run_batch(path, stop)
        told.append([e["correction"]["corrects_event_id"] for e in delivery.events])
    assert len(told[0]) == 1 and len(told[1]) == 3
    assert len(set(told[0] + told[1])) == 4
