"""Brokers crash under a sustained flow: kill -9 the leader of an ingress partition, bring it
back, then kill -9 a follower and bring it back. A filter runs throughout; at the end every
event has reached every entitled audience exactly once for a read_committed reader."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cluster_waits import leader_and_followers, wait_until_in_sync

from broker.cluster.local_kafka import LocalKafka
from broker.cluster.nodes import partition_replicas
from broker.settings import Settings
from schemas.topics import load_declaration

from .flow import (
    INGRESS,
    AuditWatcher,
    FilterProcess,
    SustainedFlow,
    fault_line,
    recovery_seconds,
    synthetic_events,
    tally_deliveries,
    wait_for,
)

RATE = 25.0  # events per second: sustained, well inside what one filter does on a shared two-core machine

pytestmark = [pytest.mark.timeout(900), pytest.mark.broker_fault]


def _all_topics(settings: Settings) -> list[str]:
    return [settings.topic(spec.name) for spec in load_declaration().all_topics()]


def _crash_and_return(
    cluster: LocalKafka,
    settings: Settings,
    node_id: int,
    flow: SustainedFlow,
    watcher: AuditWatcher,
    filt: FilterProcess,
) -> tuple[float, float, float]:
    """Kill ``node_id``; wait for deliveries to flow everywhere again; restart it; wait for
    every ISR to be whole. Returns (recovery, restart, ISR whole) in seconds."""
    fault_at = time.monotonic()
    cluster.kill_node(node_id)
    recovery = wait_for(
        lambda: filt.check_alive() or recovery_seconds(flow, watcher.first_seen, fault_at),
        240,
        f"deliveries to flow again after node {node_id} was killed",
    )
    time.sleep(1.0)
    restart_at = time.monotonic()
    cluster.restart_node(node_id)
    restarted = time.monotonic() - restart_at
    wait_until_in_sync(settings, _all_topics(settings), timeout=240)
    return recovery, restarted, time.monotonic() - restart_at


def test_leader_then_follower_killed_under_sustained_flow(
    cluster: LocalKafka, cluster_settings: Settings, tmp_path: Path, report: Any
) -> None:
    settings = cluster_settings
    ingress = settings.topic(INGRESS)
    filt = FilterProcess(settings, f"fault-{uuid.uuid4().hex[:8]}", "a", tmp_path / "filter-a.log")
    watcher = AuditWatcher(settings).start()
    flow = None
    try:
        wait_for(lambda: filt.check_alive() or filt.assigned() > 0, 240, "the filter's partitions")
        flow = SustainedFlow(settings, synthetic_events(int(RATE * 600), seed=101), RATE).start()
        wait_for(lambda: filt.check_alive() or len(watcher.first_seen) > 50, 240, "deliveries to flow")
        time.sleep(2)

        leader, _ = leader_and_followers(settings, ingress, 0)
        leader_fault = _crash_and_return(cluster, settings, leader, flow, watcher, filt)

        # A follower of the same partition, and another node than the one that just came back.
        follower = next(n for n in partition_replicas(settings, ingress, 0).followers if n != leader)
        follower_fault = _crash_and_return(cluster, settings, follower, flow, watcher, filt)

        time.sleep(2)
        events = flow.stop()
        errors, flow = flow.errors, None
        assert not errors, errors[:5]
        assert watcher.wait_all_visible([e["event_id"] for e in events], 120), "events never decided"
        filt.check_alive()
    finally:
        if flow is not None:
            flow.stop()
        watcher.stop()
        filt.stop()
    tally = tally_deliveries(settings, events)
    for name, node, (recovery, restarted, isr) in (
        ("leader-kill", leader, leader_fault),
        ("follower-kill", follower, follower_fault),
    ):
        report(
            fault_line(
                name,
                tally,
                recovery,
                f"node {node} of {ingress}[0]; restarted in {restarted:.1f} s, ISR whole "
                f"{isr:.1f} s after restart",
            )
        )
    assert tally.exactly_once, tally
