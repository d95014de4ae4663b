"""``sgb status`` on a live system: the filter running, a hub that falls behind and catches up,
a dead letter, and decisions per minute."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningFilter, read_topic, sgb_env
from factories import domestic_abuse_incident

from broker.clients import producer
from broker.settings import Settings
from connectors.runtime.publisher import EventPublisher

pytestmark = pytest.mark.kafka

RUNNER = "import sys\nfrom sgb.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def sgb(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def status(settings: Settings) -> dict[str, Any]:
    return json.loads(sgb(settings, "status", "--json", "--minutes", "5").stdout)  # type: ignore[no-any-return]


def hub_lag(found: dict[str, Any], group: str) -> dict[str, Any]:
    return next(g for g in found["lags"] if g["group"] == group)


def publish(settings: Settings, count: int) -> None:
    publisher = EventPublisher(settings, "POLICE")
    for _ in range(count):
        publisher.publish(domestic_abuse_incident())
    publisher.flush()


def test_status_shows_real_lag_that_the_hub_then_clears(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    group = f"{kafka.topic_prefix}sgb-hub-mash-202"
    sink = f"sqlite:{tmp_path / 'mash.db'}"
    publish(kafka, 3)
    assert len(read_topic(kafka, "sg.deliver.mash.202.v1", expect=3)) == 3
    sgb(kafka, "hub", "subscribe", "mash", "202", "--sink", sink, "--idle-exit", "2")

    # The hub is not running: new deliveries wait for it, and status says how many.
    publish(kafka, 7)
    bad = producer(kafka)
    bad.produce(kafka.topic("sg.ingress.police.v1"), key=b"nhs:9990000000", value=b"\x00not an event")
    bad.flush(10)
    assert len(read_topic(kafka, "sg.deliver.mash.202.v1", expect=10)) == 10
    deadline = time.monotonic() + 60
    while not read_topic(kafka, "sg.dlq.v1", expect=1, timeout=1) and time.monotonic() < deadline:
        pass
    behind = status(kafka)
    assert hub_lag(behind, group) == {
        "role": "hub",
        "group": group,
        "topic": "sg.deliver.mash.202.v1",
        "lag": 7,
        "exact": True,
    }
    filters = [g for g in behind["lags"] if g["role"] == "filter"]
    assert filters and all(g["lag"] == 0 for g in filters), filters
    ends = {t["topic"]: t for t in behind["topics"]}
    assert ends["sg.ingress.police.v1"]["end_offset"] == 11
    assert ends["sg.deliver.mash.202.v1"]["end_offset"] >= 10  # plus the transactions' commit markers
    assert "sg.deliver.school_dsl.100000.v1" in behind["unread"]  # delivered, and no hub has read it
    (letter,) = behind["dead_letters"]
    assert letter["component"] == "filter" and letter["count"] == 1
    shared = sum(m["shared"] for m in behind["decisions"])
    withheld = sum(m["withheld"] for m in behind["decisions"])
    assert shared == 20 and withheld == 50  # 10 events x (MASH + school shared, five audiences withheld)

    # The hub runs and catches up: no lag, although its topic ends in commit markers.
    sgb(kafka, "hub", "subscribe", "mash", "202", "--sink", sink, "--idle-exit", "2")
    caught_up = status(kafka)
    assert hub_lag(caught_up, group)["lag"] == 0
    text = sgb(kafka, "status").stdout
    assert "Consumer lag" in text and group in text and "Dead letters by reason" in text
    assert "Decisions per minute, last 10 minute(s)" in text
