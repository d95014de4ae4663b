"""The filter meets bad policy files and a missing broker with a sentence, never a crash
(issue 20, item 8).

Before: a policy file with bytes that are not UTF-8 crashed a running filter at reload and
gave a traceback at start; removing the policy file was silent; a filter started with no
broker reachable printed a traceback after 10 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import RunningFilter, sgb_env
from factories import domestic_abuse_incident
from structlog.testing import capture_logs
from test_filter_kafka import audits_for, publish

from broker.settings import Settings
from consent.policy import BASELINE

NOT_UTF8 = b"name: baseline\nversion: 1.0.0\n# caf\xe9 \xff\xfe\n"


def _filter(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", "filter", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_policy_file_that_is_not_utf8_stops_the_start_with_one_sentence(
    kafka: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_bytes(NOT_UTF8)
    proc = _filter(sgb_env(kafka), "--policy", str(bad))
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 1
    assert "Traceback" not in text
    assert f"Policy file {bad} is not UTF-8 text" in text


def test_a_missing_policy_file_stops_the_start_with_one_sentence(kafka: Settings, tmp_path: Path) -> None:
    proc = _filter(sgb_env(kafka), "--policy", str(tmp_path / "nowhere.yaml"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err.decode()
    assert "does not exist" in err.decode()


def test_a_running_filter_keeps_its_policy_through_a_bad_reload_and_a_removed_file(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(BASELINE.read_text())
    with (
        capture_logs() as logs,
        RunningFilter(kafka, policy_path=policy, group_id=group_id, instance="bad") as running,
    ):
        policy.write_bytes(NOT_UTF8)
        os.utime(policy, (time.time() + 5, time.time() + 5))
        first = domestic_abuse_incident()
        publish(kafka, first)
        audits_for(kafka, 1)
        policy.unlink()
        second = domestic_abuse_incident()
        publish(kafka, second)
        audits = audits_for(kafka, 2)
        assert running.error is None
    assert {a["event_id"] for a in audits} == {first["event_id"], second["event_id"]}
    rejected = [e for e in logs if e["event"] == "policy reload rejected; keeping the policy in force"]
    missing = [e for e in logs if e["event"] == "policy file missing; keeping the policy in force"]
    assert len(rejected) == 1 and "not UTF-8" in rejected[0]["reason"]
    assert len(missing) == 1, "said once, not on every batch"


def test_a_filter_started_before_its_broker_waits_with_a_sentence(tmp_path: Path) -> None:
    env = {**os.environ, "SGB_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SGB_STATE_DIR": str(tmp_path)}
    proc = _filter(env)
    time.sleep(8)
    assert proc.poll() is None, "it waits instead of failing"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    text = out.decode() + err.decode()
    assert "Traceback" not in text
    assert "Kafka not reachable; waiting for it" in text
    assert proc.returncode == 0
