"""Returns as authorities send them, on the real broker through `sgb connector run` (issue 15):
a bad UPN withholds the UPN (the event is published, the finding goes to sg.dlq.v1 with no
value), a truncated return publishes nothing and is dead-lettered once as a whole with its
content type, an unsupported file is named, and a run that read nothing usable exits 1."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.local_authority import synthetic as syn
from schemas.identifiers import synthetic_upn
from tests.conftest import sgb_env
from tests.integration.test_connector_files import read_all

SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"

pytestmark = pytest.mark.kafka


def la_run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SGB, "connector", "run", "local_authority", *args],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_withheld_fields_truncated_returns_and_unsupported_files(kafka: Settings, tmp_path: Path) -> None:
    rng = random.Random(11)
    good = synthetic_upn(rng, "202")
    bad = next(c for c in "ABCDEFGHJKLMNPQRTUVWXYZ" if c != good[0]) + good[1:]
    folder = tmp_path / "cin"
    folder.mkdir()
    syn.write_cin(
        folder / "a-return.xml",
        [syn.CinChild("C1", bad, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-20")],
    )
    whole = syn.write_cin(folder / "b-return.xml", list(syn.cin_children(30, rng))).read_bytes()
    (folder / "b-return.xml").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.txt").write_text("not a return")

    first = la_run(kafka, "--source", str(folder), "--format", "cin")
    assert first.returncode == 1, first.stderr
    assert "3 published" in first.stdout and "3 of them published with a data-quality finding" in first.stdout
    assert "1 file(s) not read (unsupported): notes.txt." in first.stdout
    assert "b-return.xml is not well-formed XML" in first.stderr
    assert "  withheld 3: child.upn withheld: UPN check letter does not match." in first.stdout.splitlines()

    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.local_authority.v1")]
    assert [e["child"]["la_child_id"] for e in events] == ["C1"] * 3  # nothing of the truncated file
    assert all(e["child"]["upn"] is None for e in events)
    letters = [codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1")]
    findings = [d for d in letters if d["content_type"] == "application/vnd.sgb.data-quality"]
    assert sorted(d["event_id"] for d in findings) == sorted(e["event_id"] for e in events)
    assert {d["reason"] for d in findings} == {
        "Data quality: child.upn withheld: UPN check letter does not match."
    }
    assert all(d["payload"] is None and bad not in repr(d) for d in findings)
    (whole_file,) = [d for d in letters if d not in findings]
    assert whole_file["position"] == "whole file" and whole_file["source_name"] == "b-return.xml"
    assert (
        whole_file["content_type"] == "application/xml" and whole_file["payload"] == whole[: len(whole) // 2]
    )

    # Dead-lettered once: the next run does not retry the truncated file, nor publish again.
    again = la_run(kafka, "--source", str(folder), "--format", "cin")
    assert again.returncode == 0, again.stderr
    assert len(read_all(kafka, "sg.dlq.v1")) == len(letters)

    # The authority sends the return again, complete: it is read in full.
    (folder / "b-return.xml").write_bytes(whole)
    fixed = la_run(kafka, "--source", str(folder), "--format", "cin")
    assert fixed.returncode == 0, fixed.stderr
    assert "0 dead-lettered" in fixed.stdout and len(read_all(kafka, "sg.ingress.local_authority.v1")) > 3


def test_a_run_that_read_nothing_usable_exits_1(kafka: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "903"
    folder.mkdir()
    (folder / "export.xlsx").write_bytes(b"PK\x03\x04")  # a workbook, not its CSV tables
    result = la_run(kafka, "--source", str(folder), "--format", "ssda903", "--la", "202")
    assert result.returncode == 1
    assert "1 file(s) not read (unsupported): export.xlsx." in result.stdout
    assert result.stderr.strip().endswith(f"Nothing usable was read from {folder}.")
