"""Two filter processes share the ingress partitions; one is killed with SIGKILL under a
sustained flow and the other takes over, losing and duplicating nothing."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from broker.settings import Settings

from .flow import (
    AuditWatcher,
    FilterProcess,
    SustainedFlow,
    fault_line,
    recovery_seconds,
    synthetic_events,
    tally_deliveries,
    wait_for,
)

RATE = 25.0

pytestmark = pytest.mark.timeout(900)


def test_two_filters_share_the_work_and_the_survivor_takes_over(
    cluster_settings: Settings, tmp_path: Path, report: Any
) -> None:
    settings = cluster_settings
    group = f"fault-{uuid.uuid4().hex[:8]}"
    a = FilterProcess(settings, group, "a", tmp_path / "filter-a.log")
    b = FilterProcess(settings, group, "b", tmp_path / "filter-b.log")
    watcher = AuditWatcher(settings).start()
    flow = None
    try:
        wait_for(
            lambda: a.check_alive() or b.check_alive() or (a.assigned() > 0 and b.assigned() > 0),
            240,
            "both filters to be assigned partitions",
        )
        flow = SustainedFlow(settings, synthetic_events(int(RATE * 600), seed=202), RATE).start()
        wait_for(lambda: b.check_alive() or len(watcher.first_seen) > 50, 240, "deliveries to flow")
        time.sleep(3)
        fault_at = time.monotonic()
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        recovery = wait_for(
            lambda: b.check_alive() or recovery_seconds(flow, watcher.first_seen, fault_at),
            120,
            "the surviving filter to deliver on every partition",
        )
        time.sleep(3)
        events = flow.stop()
        errors, flow = flow.errors, None
        assert not errors, errors[:5]
        assert watcher.wait_all_visible([e["event_id"] for e in events], 120), "events never decided"
        b.check_alive()
    finally:
        if flow is not None:
            flow.stop()
        watcher.stop()
        for proc in (a, b):
            proc.stop()
    tally = tally_deliveries(settings, events)
    report(
        fault_line(
            "filter-kill",
            tally,
            recovery,
            "filter a killed (SIGKILL), b took over its partitions; the wait includes the group "
            "rebalance and the broker aborting a's open transaction",
        )
    )
    assert tally.exactly_once, tally
