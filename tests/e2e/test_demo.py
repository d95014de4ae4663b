"""``sgb demo`` as a newcomer runs it: every connector's events reach the filter (signed, as the
demo says), nothing but the one deliberately bad police row is dead-lettered, and the screen
shows the tables with the log lines in the file it names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from broker.settings import Settings
from sgb.ops.status import dead_letters
from tests.conftest import sgb_env


@pytest.mark.kafka
def test_demo_dead_letters_only_the_bad_police_row(kafka: Settings, tmp_path: Path) -> None:
    log_file = tmp_path / "demo.log"
    result = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "demo", "--log-file", str(log_file)],
        env=sgb_env(kafka),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    letters = list(dead_letters(kafka))
    assert [(d.component, d.reason) for d in letters] == [
        ("connector:police", "child.nhs_number: NHS number check digit does not match.")
    ]

    screen = result.stdout.splitlines()
    assert f"Log lines of every process the demo runs go to {log_file}." in screen
    assert not [line for line in screen if line.lstrip().startswith("{")], "log lines on the screen"
    assert screen.count("Demo complete.") == 1
    assert "Dead letters this run: 1" in screen
    for heading in (
        "Decisions (one line per event and audience; each event's decisions travel as one audit record):",
        "What arrived, per delivery topic:",
    ):
        assert heading in screen
    # Issue 17: a join only the child index made possible (plan under the LA's id, attendance
    # under the NHS number), with the link it relied on.
    assert (
        "Joins only the child index made possible (plan under the LA's id, attendance under the NHS number):"
        in screen
    )
    assert (
        "  The MASH received the attendance: the index linked the two records on their demographics."
        in screen
    )
    assert any("EMERGENCY_ATTENDANCE" in line and "DEMOGRAPHIC_MATCH (AUTOMATIC)" in line for line in screen)
    assert result.stderr.strip() == ""
    logged = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("event") == "filter running" for line in logged)
