"""`sgb connector run ... --dry-run` (issue 15): check an export before going live. It reads and
maps with no Kafka (the bootstrap points nowhere), prints the accounting and every dead-letter
and data-quality reason with its place, writes no checkpoint, and exits 1 if anything would be
dead-lettered. Every agency's file formats take it, health included."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from connectors.health import synthetic as health_syn
from connectors.local_authority import synthetic as la_syn
from connectors.police import synthetic as police_syn
from schemas.identifiers import synthetic_upn

SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"
MAPPINGS = Path(__file__).resolve().parents[2] / "connectors" / "mappings"


def dry_run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # No broker listens here: a dry run that tried to reach Kafka would hang or fail.
    env.update(
        {"SGB_BOOTSTRAP_SERVERS": "127.0.0.1:9", "SGB_STATE_DIR": str(state), "SGB_LOG_FORMAT": "json"}
    )
    return subprocess.run(
        [sys.executable, "-c", SGB, "connector", "run", *args, "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dry_run_of_a_cin_return_prints_every_reason_and_writes_nothing(tmp_path: Path) -> None:
    rng = random.Random(4)
    good = synthetic_upn(rng, "202")
    bad = next(c for c in "ABCDEFGHJKLMNPQRTUVWXYZ" if c != good[0]) + good[1:]
    path = la_syn.write_cin(
        tmp_path / "cin.xml",
        [
            la_syn.CinChild("C1", bad, "2015-01-01", "2024-04-01", nfa=True),
            la_syn.CinChild("C2", "UN1", "2015-01-01", "2024-04-01", cpp_start="31/02/2024"),
        ],
    )
    state = tmp_path / "state"
    result = dry_run(state, "local_authority", "--source", str(path), "--format", "cin")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Dry run, nothing sent: 1 file(s): 2 read, 1 published, 1 dead-lettered")
    assert (
        "dead letter: cin.xml, Child 2 / CINdetails 1 / ChildProtectionPlans 1: CPPstartDate is not a real date."
        in lines
    )
    assert (
        "data quality: cin.xml, Child 1 / CINdetails 1: child.upn withheld: UPN check letter does not match."
        in lines
    )
    assert bad not in result.stdout + result.stderr
    assert not state.exists() or not any(p.is_file() for p in state.rglob("*"))  # no checkpoint, no snapshot


def test_dry_run_of_clean_exports_of_police_and_health_exits_0(tmp_path: Path) -> None:
    rng = random.Random(5)
    police = police_syn.write_csv(
        tmp_path / "incidents.csv", police_syn.DOMESTIC_ABUSE_COLUMNS, police_syn.domestic_abuse_rows(5, rng)
    )
    result = dry_run(
        tmp_path / "state",
        "police",
        "--source",
        str(police),
        "--mapping",
        str(MAPPINGS / "police-domestic-abuse.yaml"),
    )
    assert result.returncode == 0, result.stderr
    assert "5 read, 5 published, 0 dead-lettered" in result.stdout
    fhir = health_syn.write_ndjson(tmp_path / "fhir.ndjson", health_syn.fhir_resources(6, rng, bad=[2]))
    result = dry_run(tmp_path / "state", "health", "--source", str(fhir), "--format", "fhir")
    assert result.returncode == 1, result.stderr  # the bad resource would be dead-lettered
    assert any(line.startswith("dead letter: fhir.ndjson, line ") for line in result.stdout.splitlines())
