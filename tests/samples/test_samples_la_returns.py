"""The local-authority connector on public sample returns (``../shared/samples``, see its README):
the DfE CIN census validator's fake data, the regional data-sharing project's CIN and SSDA903
samples. Read in place, never copied. Run by ``make test-samples``; ``make test`` ignores them.

These files deliberately carry errors (UPNs with wrong check letters, pre-birth dates, a header
table that repeats a child). Every record must be accounted for, and no child with a valid key
may lose its events for a bad secondary field.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from factories import KeepingDelivery

from connectors.local_authority import CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.summary import Summary

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"


@pytest.fixture(scope="module", autouse=True)
def _samples_present() -> None:
    assert SAMPLES.is_dir(), (
        f"The public samples are not at {SAMPLES}: make test-samples needs ../shared/samples."
    )


def run(reader: Any, system: str, source: Path, state: Path) -> tuple[Summary, KeepingDelivery]:
    delivery = KeepingDelivery()
    runner = FileConnector("samples", reader, LaMapper(LaProfile(), system), delivery, CheckpointStore(state))
    return runner.run_batch(source, threading.Event()), delivery


def test_cin_samples_publish_every_child_with_a_valid_key(tmp_path: Path) -> None:
    files = sorted((SAMPLES / "cin").glob("*.xml"))
    assert len(files) >= 3
    summary, sent = run(CinCensusReader(), "cin-census", SAMPLES / "cin", tmp_path)
    c = summary.counts
    assert summary.files == len(files) and not summary.failed_files and not summary.unsupported
    assert c["read"] == c["published"] + c["dead_lettered"] + c["no_event"]
    assert c["published"] > 0
    # A wrong UPN check letter withholds the UPN; the child's plans and enquiries are published.
    assert any(p.reason == "child.upn withheld: UPN check letter does not match." for p in sent.findings)
    assert c["withheld"] == len({(p.source, p.position) for p in sent.findings})
    # No dead letter is about a secondary identifier or a pre-birth date.
    for letter in sent.dead_letters:
        assert not letter.reason.startswith("child."), letter.line()
        assert "date_of_birth" not in letter.reason and "birth" not in letter.reason.lower(), letter.line()


def test_ssda903_samples_are_read_table_by_table_and_every_row_accounted(tmp_path: Path) -> None:
    folder = SAMPLES / "ssda903"
    summary, sent = run(Ssda903Reader("202"), "ssda903", folder, tmp_path)
    c = summary.counts
    assert not summary.failed_files and not summary.unsupported
    assert summary.skipped_tables == {"header": 1}
    assert c["read"] == c["published"] + c["dead_lettered"] + c["no_event"]
    # The header table repeats child 689661 with two dates of birth: that child is held back,
    # with the reason, and everyone else is published.
    held = [
        p
        for p in sent.dead_letters
        if p.reason.startswith("Held back: the header table has two different rows")
    ]
    assert held
    published = {e["child"]["la_child_id"] for e in sent.events}
    assert published and "689661" not in published
    assert {e["event_type"] for e in sent.events} == {"LOOKED_AFTER_STATUS"}
    # The regional project's file of overlapping episodes is published with its overlaps reported.
    assert any("overlap" in p.reason for p in sent.findings)
