"""Waiting on a test cluster's partition leaders and replicas (fault and cluster tests)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from broker.cluster.nodes import PartitionReplicas, partition_replicas, replicas
from broker.exceptions import KafkaUnavailable
from broker.settings import Settings


def leader_and_followers(settings: Settings, topic: str, partition: int) -> tuple[int, tuple[int, ...]]:
    """The node id leading the partition, and the node ids following it."""
    found = partition_replicas(settings, topic, partition)
    return found.leader, found.followers


def wait_for_new_leader(
    settings: Settings, topic: str, partition: int, old_leader: int, timeout: float = 60.0
) -> PartitionReplicas:
    """Wait until the partition is led by a node other than ``old_leader``."""
    deadline = time.monotonic() + timeout
    while True:
        found = partition_replicas(settings, topic, partition)
        if found.leader >= 0 and found.leader != old_leader:
            return found
        if time.monotonic() > deadline:
            msg = f"{topic}[{partition}] was still led by node {old_leader} after {timeout:.0f} s."
            raise KafkaUnavailable(msg)
        time.sleep(0.1)


def wait_until_in_sync(
    settings: Settings, topics: Iterable[str], timeout: float = 120.0, poll: float = 0.2
) -> float:
    """Wait until every partition of ``topics`` has its whole ISR; returns the seconds waited."""
    names = list(topics)
    began = time.monotonic()
    while True:
        try:
            lagging = [p for p in replicas(settings, names) if not p.in_sync]
        except KafkaUnavailable:
            lagging = None
        if lagging == []:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            where = ", ".join(
                f"{p.topic}[{p.partition}] isr {list(p.isr)} of {list(p.replicas)}"
                for p in (lagging or [])[:3]
            )
            msg = f"The ISR was not whole within {timeout:.0f} s: {where or 'no metadata'}."
            raise KafkaUnavailable(msg)
        time.sleep(poll)
