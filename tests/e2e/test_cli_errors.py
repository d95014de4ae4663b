"""Every command exits non-zero with one clear sentence on bad input, and never a traceback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def sgb(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgb.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGB_")}
    env.update({"SGB_STATE_DIR": str(tmp_path / "state"), **extra})
    return env


def assert_one_sentence(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sgb: ")]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]
    assert lines[0].endswith(".")


def test_bad_setting_names_the_setting(tmp_path: Path) -> None:
    assert_one_sentence(
        sgb("kafka", "status", env=clean_env(tmp_path, SGB_KAFKA_PORT="ninety")),
        "Setting SGB_KAFKA_PORT is invalid",
    )


def test_bad_bootstrap_names_the_setting(tmp_path: Path) -> None:
    assert_one_sentence(
        sgb("topics", "apply", env=clean_env(tmp_path, SGB_BOOTSTRAP_SERVERS="localhost")),
        "Setting SGB_BOOTSTRAP_SERVERS is invalid",
    )


def test_missing_config_file(tmp_path: Path) -> None:
    assert_one_sentence(
        sgb("--config", str(tmp_path / "nope.toml"), "kafka", "status", env=clean_env(tmp_path)),
        "nope.toml does not exist",
    )


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sgb.toml"
    config.write_text('bootstrap_servers = "127.0.0.1:9092"\nkafak_port = 1\n')
    assert_one_sentence(
        sgb("--config", str(config), "kafka", "status", env=clean_env(tmp_path)),
        "Unknown setting 'kafak_port'",
    )


def test_config_file_value_is_used(tmp_path: Path) -> None:
    config = tmp_path / "sgb.toml"
    config.write_text("kafka_port = 19999\n")
    result = sgb("--config", str(config), "kafka", "status", env=clean_env(tmp_path))
    assert result.returncode == 3 and "not running" in result.stdout


def test_no_java_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = sgb("kafka", "start", env=clean_env(tmp_path, PATH=str(empty)))
    assert_one_sentence(result, "Java is not installed")


def test_no_maven_says_so(tmp_path: Path) -> None:
    only_java = tmp_path / "bin"
    only_java.mkdir()
    java = shutil.which("java")
    assert java, "the test machine has Java (make test needs it for the broker)"
    (only_java / "java").symlink_to(java)
    env = clean_env(tmp_path, PATH=str(only_java), XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert_one_sentence(sgb("kafka", "fetch", env=env), "Maven is not installed")


def test_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = sgb("kafka", "start", env=clean_env(tmp_path, SGB_KAFKA_PORT=str(port)))
    assert_one_sentence(result, f"Port {port} on 127.0.0.1 is already in use")


def test_stop_when_not_running(tmp_path: Path) -> None:
    result = sgb("kafka", "stop", env=clean_env(tmp_path))
    assert result.returncode == 0 and "not running" in result.stdout


def test_policy_check_names_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("""name: t
version: "1"
rules:
  - id: school-sees-refuge
    description: wrong
    event_types: [DOMESTIC_ABUSE_INCIDENT]
    audience: SCHOOL_DSL
    grant: [CONFIDENTIAL_ADDRESS]
    lawful_basis: PUBLIC_TASK_SAFEGUARDING
""")
    assert_one_sentence(
        sgb("policy", "check", str(bad), env=clean_env(tmp_path)),
        "Rule school-sees-refuge grants CONFIDENTIAL_ADDRESS to SCHOOL_DSL",
    )


def test_policy_check_passes_on_the_baseline(tmp_path: Path) -> None:
    result = sgb("policy", "check", env=clean_env(tmp_path))
    assert result.returncode == 0 and "hard limits respected" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("policy", "evaluate", "--event", "/nonexistent/event.json"), "does not exist"),
        (
            ("hub", "subscribe", "teachers", "100000", "--sink", "jsonl:/tmp/x.jsonl"),
            "Audience 'TEACHERS' is not one of",
        ),
        (
            ("hub", "subscribe", "school_dsl", "100000", "--sink", "csv:/tmp/x"),
            "Sink kind 'csv' is not supported",
        ),
        (
            ("hub", "subscribe", "school_dsl", "100000", "--sink", "jsonl:/tmp/x", "--since", "yesterday"),
            "is not an ISO 8601 time",
        ),
    ],
)
def test_user_errors_are_one_sentence(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    assert_one_sentence(sgb(*args, env=clean_env(tmp_path)), fragment)


def test_policy_evaluate_bad_event_names_the_field(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"event_id": "x", "event_type": "DOMESTIC_ABUSE_INCIDENT"}')
    assert_one_sentence(
        sgb("policy", "evaluate", "--event", str(event), env=clean_env(tmp_path)),
        "Event is invalid: Field occurred_at is required",
    )
