"""A CIN return is read and mapped once per fact (issue 21, item 2): the withdrawal rule's
mapping of a fact is the snapshot mapper's too, and a child's XML is written out only for a
dead letter, yet is the child as read even after the reader has moved past it."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

from connectors.assembly import snapshot_parts
from connectors.local_authority import CinCensusReader, LaMapper, LaProfile
from connectors.local_authority import synthetic as syn
from connectors.runtime.dry_run import MemoryCheckpoints
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery
from tests.unit.test_connector_la_corrections import Recording

UPN = syn.synthetic_upn(random.Random(21), "202")


class Counting:
    """The LA mapping, counting its calls per record position."""

    def __init__(self) -> None:
        self.inner = LaMapper(LaProfile(la_code="202"), "cin-census")
        self.calls: Counter[str] = Counter()

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        self.calls[record.position] += 1
        return self.inner(record)


def children() -> list[syn.CinChild]:
    return [
        syn.CinChild("C1", UPN, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-20"),
        syn.CinChild("C2", UPN, "2016-02-02", "2024-05-01", nfa=True),
        # A section 47 dated before its referral: the mapping refuses it (dead-lettered).
        syn.CinChild("C3", UPN, "2016-02-02", "2024-05-01", s47="2024-04-01"),
    ]


def run(state: Path, source: Path, mapping: Any) -> tuple[Recording, Any]:
    store = SnapshotStore(state)
    reader, mapper = snapshot_parts("local_authority", CinCensusReader(), mapping, store)
    recording = Recording()
    runner = FileConnector("la-test", reader, mapper, SnapshotDelivery(recording, store), MemoryCheckpoints())
    return recording, runner.run_batch(source, threading.Event())


def test_a_withdrawing_return_maps_each_fact_once(tmp_path: Path) -> None:
    source = syn.write_cin(tmp_path / "cin.xml", children())
    counting = Counting()
    recording, summary = run(tmp_path / "state", source, counting)
    assert counting.calls and set(counting.calls.values()) == {1}, counting.calls
    # The same outcome as the mapping unwrapped, record for record.
    plain, plain_summary = run(tmp_path / "plain", source, counting.inner)
    assert summary.counts == plain_summary.counts
    assert summary.counts["dead_lettered"] == 1 and summary.counts["published"] >= 3
    assert [e["event_id"] for e in recording.events] == [e["event_id"] for e in plain.events]
    assert recording.dead_letters == plain.dead_letters


def test_a_cin_dead_letter_keeps_the_child_as_read_after_the_reader_moved_on(tmp_path: Path) -> None:
    kids = children()
    kids[1].la_child_id = ""  # no LAchildID: malformed, dead-lettered with its XML
    source = syn.write_cin(tmp_path / "cin.xml", kids)
    records = list(CinCensusReader().records(FileRef(source, "c", "cin.xml", "f")))  # all read
    bad = next(r for r in records if isinstance(r.data, Malformed))
    child = fromstring(bad.payload())
    assert child.tag.rsplit("}", 1)[-1] == "Child"
    assert len(child) > 1  # its elements, not an emptied shell
    first = fromstring(records[0].payload())
    ids = [e.text for e in first.iter() if e.tag.rsplit("}", 1)[-1] == "LAchildID"]
    assert ids == ["C1"]
