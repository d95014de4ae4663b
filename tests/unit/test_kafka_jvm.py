"""The local broker's JVM command line follows SGB_KAFKA_JIT (issue 21: C2 compiled for over a
minute after every start, on one of two cores, while the broker served)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from broker.cluster.nodes import KafkaNode
from broker.settings import Settings


def _argv_of_spawn(tmp_path: Path, settings: Settings) -> list[str]:
    """The arguments ``KafkaNode.spawn`` gives java (a stand-in that writes them down)."""
    record = tmp_path / "argv.txt"
    java = tmp_path / "java"
    java.write_text(f'#!/bin/sh\nfor a in "$@"; do echo "$a"; done > {record}\n')
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    node = KafkaNode(settings, 1, tmp_path / "node", 9092, 9093, "1@127.0.0.1:9093", 1)
    node.log_dir.mkdir(parents=True)
    node.spawn(str(java), "kafka.jar", tmp_path / "server.properties")
    deadline = time.monotonic() + 10
    while not (record.exists() and record.read_text().endswith("server.properties\n")):
        assert time.monotonic() < deadline, "the stand-in java was not run"
        time.sleep(0.01)
    return record.read_text().splitlines()


def test_the_local_broker_compiles_with_c1_alone_by_default(tmp_path: Path) -> None:
    argv = _argv_of_spawn(tmp_path, Settings(state_dir=tmp_path, kafka_heap="256m"))
    assert "-XX:TieredStopAtLevel=1" in argv
    assert argv[-2:] == ["kafka.Kafka", str(tmp_path / "server.properties")]


def test_full_keeps_hotspots_tiered_compilation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGB_KAFKA_JIT", "full")
    argv = _argv_of_spawn(tmp_path, Settings(state_dir=tmp_path, kafka_heap="256m"))
    assert not any(a.startswith("-XX:TieredStopAtLevel") for a in argv)
    assert "-Xmx256m" in argv


def test_an_unknown_jit_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SGB_KAFKA_JIT", "fast")
    with pytest.raises(ValueError, match="quick") as caught:
        Settings(state_dir=tmp_path)
    assert "full" in str(caught.value)
