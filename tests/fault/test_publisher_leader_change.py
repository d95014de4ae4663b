"""A connector's publisher keeps going when the leader of the partition it writes to dies:
every event it published is on the ingress topic exactly once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cluster_waits import leader_and_followers, wait_for_new_leader, wait_until_in_sync

from broker.cluster.local_kafka import LocalKafka
from broker.settings import Settings

from .flow import (
    INGRESS,
    POLICE_TYPES,
    SustainedFlow,
    ack_recovery_seconds,
    fault_line,
    synthetic_events,
    tally_ingress,
    wait_for,
)

RATE = 50.0

pytestmark = pytest.mark.timeout(900)


def test_publisher_keeps_going_through_a_leader_change(
    cluster: LocalKafka, cluster_settings: Settings, report: Any
) -> None:
    settings = cluster_settings
    ingress = settings.topic(INGRESS)
    events = synthetic_events(int(RATE * 600), seed=303, types=POLICE_TYPES)  # one connector: police
    flow = SustainedFlow(settings, events, RATE).start()
    try:
        wait_for(lambda: sum(1 for s in flow.sent if s.acked_at) > 100, 60, "the first acknowledgements")
        leader, _ = leader_and_followers(settings, ingress, 0)
        fault_at = time.monotonic()
        cluster.kill_node(leader)
        recovery = wait_for(
            lambda: ack_recovery_seconds(flow, fault_at),
            240,
            "acknowledgements on every partition after the leader died",
        )
        new_leader = wait_for_new_leader(settings, ingress, 0, leader).leader
        restart_at = time.monotonic()
        cluster.restart_node(leader)
        wait_until_in_sync(settings, [ingress], timeout=240)
        isr = time.monotonic() - restart_at
        time.sleep(2)
        events = flow.stop()
        errors, flow = flow.errors, None
    finally:
        if flow is not None:
            flow.stop()
    assert not errors, errors[:5]
    tally = tally_ingress(settings, events)
    report(
        fault_line(
            "publisher-leader-change",
            tally,
            recovery,
            f"{ingress}[0] leader node {leader} killed, node {new_leader} took over; "
            f"ISR whole {isr:.1f} s after restart",
        )
    )
    assert tally.exactly_once, tally
