"""A force corrects its records (issue 18): a row exported again under the same record id with
other content is AMENDED of the first event; one whose status says withdrawn (the mapping's
``retracted_when``) is RETRACTED; an identical re-send is nothing new and keeps its id."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from connectors.assembly import snapshot_parts
from connectors.exceptions import MappingFileError
from connectors.police import PoliceMapper, load_mapping, reader_for
from connectors.police import synthetic as syn
from connectors.runtime.dry_run import MemoryCheckpoints
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery
from connectors.runtime.summary import Summary
from tests.unit.test_connector_la_corrections import Recording

MAPPING = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "police-domestic-abuse.yaml"


def export(state: Path, folder: Path, rows: list[dict[str, str]]) -> tuple[list[dict[str, Any]], Summary]:
    """One export through the file loop, as `sgb connector run police` runs it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = syn.write_csv(
        folder / f"export-{len(list(folder.iterdir()))}.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows
    )
    mapping = load_mapping(MAPPING)
    store = SnapshotStore(state)
    reader, mapper = snapshot_parts("police", reader_for(mapping, "csv"), PoliceMapper(mapping), store)
    recording = Recording()
    runner = FileConnector(
        "police-da", reader, mapper, SnapshotDelivery(recording, store), MemoryCheckpoints()
    )
    return recording.events, runner.run_batch(path, threading.Event())


def test_an_amended_record_is_a_correction_of_the_first_event(tmp_path: Path) -> None:
    row = syn.domestic_abuse_rows(1, random.Random(4))[0]
    first, _ = export(tmp_path / "s", tmp_path / "in", [row])
    assert len(first) == 1 and first[0].get("correction") is None
    # The same record sent again, unchanged: nothing new (and the id would be the same anyway).
    assert export(tmp_path / "s", tmp_path / "in", [row])[0] == []
    assert PoliceMapper(load_mapping(MAPPING)).record_key(first[0]) is not None
    amended, summary = export(tmp_path / "s", tmp_path / "in", [{**row, "DASHRisk": "High"}])
    assert [e["correction"] for e in amended] == [
        {"kind": "AMENDED", "corrects_event_id": first[0]["event_id"]}
    ]
    assert (
        amended[0]["details"]["dash_risk_level"] == "HIGH" and amended[0]["event_id"] != first[0]["event_id"]
    )
    assert summary.corrections == {"AMENDED": 1}
    # The original and its amendment in one export: published, then amended.
    other = syn.domestic_abuse_rows(2, random.Random(5))[1]
    both, _ = export(
        tmp_path / "s2",
        tmp_path / "in2",
        [other, {**other, "OfficerSummary": "Summary amended by the force."}],
    )
    assert [(e.get("correction") or {}).get("kind") for e in both] == [None, "AMENDED"]


def test_a_record_the_force_withdrew_is_retracted_with_its_metadata_only(tmp_path: Path) -> None:
    row = syn.domestic_abuse_rows(1, random.Random(6))[0]
    first, _ = export(tmp_path / "s", tmp_path / "in", [row])
    withdrawn, summary = export(tmp_path / "s", tmp_path / "in", [{**row, "Outcome": "No crime"}])
    assert len(withdrawn) == 1
    notice = withdrawn[0]
    assert notice["correction"] == {"kind": "RETRACTED", "corrects_event_id": first[0]["event_id"]}
    assert (
        notice["narrative"] is None
        and notice["related_people"] == []
        and notice["child"]["given_name"] is None
    )
    assert summary.corrections == {"RETRACTED": 1}
    assert export(tmp_path / "s", tmp_path / "in", [{**row, "Outcome": "No crime"}])[0] == []  # told once


def test_a_record_withdrawn_before_it_was_ever_published_sends_nothing(tmp_path: Path) -> None:
    row = syn.domestic_abuse_rows(1, random.Random(7))[0]
    events, summary = export(tmp_path / "s", tmp_path / "in", [{**row, "Outcome": "Cancelled"}])
    assert events == [] and summary.counts["no_event"] == 1


def test_two_children_of_one_incident_are_two_records_not_an_amendment(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(2, random.Random(8))
    sibling = {**rows[1], "IncidentRef": rows[0]["IncidentRef"]}
    events, _ = export(tmp_path / "s", tmp_path / "in", [rows[0], sibling])
    assert [e.get("correction") for e in events] == [None, None]
    assert len({e["event_id"] for e in events}) == 2


def test_retracted_when_needs_exactly_one_of_equals_or_in(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = MAPPING.read_text(encoding="utf-8").replace(
        'retracted_when: {column: Outcome, in: ["No crime", "Cancelled", "Entered in error"]}',
        "retracted_when: {column: Outcome}",
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingFileError, match="invalid at retracted_when: needs exactly one of"):
        load_mapping(path)
