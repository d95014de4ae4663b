"""Tamper-evident audit on a real broker: the filter chains its audit records, ``sgb audit
verify`` passes on what it wrote, finds a changed, a dropped, two swapped and a removed newest
record in copies of the topic, and the chains continue across a restart and a rebalance."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka import Message, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]
from conftest import RunningFilter, read_topic, sgb_env
from factories import distinct_children, domestic_abuse_incident, event
from test_filter_kafka import audit_count, publish, start_filter, wait_for

from broker.clients import admin_client, consumer, producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from consent.audit_chain import Head, bytes_hash

AUDIT = "sg.audit.decisions.v1"
AUDIENCES = 7  # decisions in each event's audit record (baseline policy)


def some_events(count: int) -> list[dict[str, Any]]:
    """Police and school events, so that several ingress topics and partitions make chains."""
    return distinct_children(
        [domestic_abuse_incident() if i % 2 else event("SCHOOL_SAFEGUARDING_CONCERN") for i in range(count)]
    )


def audit_messages(settings: Settings, expect: int, topic: str = AUDIT) -> list[Message]:
    messages = read_topic(settings, topic, expect=expect, timeout=90)
    assert len(messages) == expect, f"{len(messages)} of {expect} audit records arrived"
    return messages


def sgb_verify(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgb.cli", "audit", "verify", "--settle", "2", *args],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
    )


def by_partition(messages: list[Message]) -> dict[int, list[Message]]:
    out: dict[int, list[Message]] = defaultdict(list)
    for msg in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        out[msg.partition()].append(msg)
    return out


def copy_to(settings: Settings, logical: str, partitions: dict[int, list[bytes]]) -> None:
    """Write records into a new topic, each partition's in the order given."""
    admin = admin_client(settings)
    topic = settings.topic(logical)
    admin.create_topics([NewTopic(topic, 6, replication_factor=1)])[topic].result(30)
    prod = producer(settings)
    for partition, values in partitions.items():
        for value in values:
            prod.produce(topic, value=value, partition=partition)
    assert prod.flush(30) == 0


def first_chain_run(codecs: Codecs, partitions: dict[int, list[Message]]) -> tuple[int, list[int]]:
    """A partition and the indexes (within it) of the records of its longest chain, in order."""
    best: tuple[int, list[int]] = (0, [])
    for partition, messages in partitions.items():
        chains: dict[str, list[int]] = defaultdict(list)
        for index, msg in enumerate(messages):
            chains[codecs.audit.decode(msg.value())["chain"]].append(index)
        longest = max(chains.values(), key=len)
        if len(longest) > len(best[1]):
            best = (partition, longest)
    return best


def test_filter_chains_audit_and_verify_finds_each_kind_of_tampering(kafka: Settings, group_id: str) -> None:
    events = some_events(30)
    with RunningFilter(kafka, group_id=group_id, instance="one"):
        publish(kafka, *events)
        messages = audit_messages(kafka, len(events))
    codecs = Codecs(registry_for(kafka))
    records = [codecs.audit.decode(m.value()) for m in messages]
    chains = {r["chain"] for r in records}
    assert len(chains) >= 4, "events spread over several ingress partitions make several chains"
    assert all(r["record_hash"] and r["previous_hash"] and r["sequence"] is not None for r in records)
    assert all(len(r["decisions"]) == AUDIENCES for r in records), "one record per event, every decision"

    intact = sgb_verify(kafka, "--group", group_id)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"{len(chains)} chain(s), {len(records)} chained record(s) verified" in intact.stdout
    assert f"{len(chains)} chain head(s) committed by group {group_id} checked; 0 problem(s)" in intact.stdout

    partitions = by_partition(messages)
    values = {p: [m.value() for m in msgs] for p, msgs in partitions.items()}
    partition, run = first_chain_run(codecs, partitions)
    assert len(run) >= 4
    chain = codecs.audit.decode(partitions[partition][run[0]].value())["chain"]

    changed = {p: list(v) for p, v in values.items()}
    record = codecs.audit.decode(changed[partition][run[1]])
    first = record["decisions"][0]
    first["outcome"] = "SHARE" if first["outcome"] == "WITHHOLD" else "WITHHOLD"
    changed[partition][run[1]] = codecs.audit.encode(record)
    dropped = {p: list(v) for p, v in values.items()}
    del dropped[partition][run[2]]
    swapped = {p: list(v) for p, v in values.items()}
    swap = swapped[partition]
    swap[run[1]], swap[run[2]] = swap[run[2]], swap[run[1]]
    no_tail = {p: list(v) for p, v in values.items()}
    del no_tail[partition][run[-1]]
    copies = {"changed": changed, "dropped": dropped, "swapped": swapped, "no-tail": no_tail}
    for name, copy in copies.items():
        copy_to(kafka, f"scratch.{name}", copy)

    result = sgb_verify(kafka, "--topic", "scratch.changed", "--no-heads")
    assert result.returncode == 1
    assert (
        f"partition {partition} offset {run[1]} chain {chain}: sequence 1: content does not match its "
        "record_hash (record changed)" in result.stdout.splitlines()
    )
    assert "1 problem(s)" in result.stdout

    result = sgb_verify(kafka, "--topic", "scratch.dropped", "--no-heads")
    assert result.returncode == 1
    assert (
        f"partition {partition} offset {run[3] - 1} chain {chain}: sequence 3 follows 1: 1 record(s) "
        "missing or moved" in result.stdout.splitlines()
    )

    result = sgb_verify(kafka, "--topic", "scratch.swapped", "--no-heads")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"partition {partition} offset {run[1]} chain {chain}: sequence 2 follows 0: 1 record(s) "
        "missing or moved" in lines
    )
    assert (
        f"partition {partition} offset {run[2]} chain {chain}: sequence 1 follows 2 (out of order or "
        "chain restarted)" in lines
    )

    # A removed newest record leaves every link intact; the committed head finds it.
    assert sgb_verify(kafka, "--topic", "scratch.no-tail", "--no-heads").returncode == 0
    result = sgb_verify(kafka, "--topic", "scratch.no-tail", "--group", group_id)
    assert result.returncode == 1
    last = len(run) - 1
    assert (
        f"chain {chain}: chain ends at sequence {last - 1} but the committed head is sequence {last}: "
        "1 newest record(s) missing" in result.stdout
    )

    # A history rewritten consistently (every hash recomputed) with a head committed for it: the
    # head is not signed by the filter's key (issue 20, item 3: before, this verified clean).
    rewritten = {p: list(v) for p, v in changed.items()}
    previous = codecs.audit.decode(rewritten[partition][run[0]])["record_hash"]
    for offset in run[1:]:
        record = codecs.audit.decode(rewritten[partition][offset])
        record["previous_hash"] = previous
        body = codecs.audit.encode(record)[5 : -len(record["record_hash"]) - 2]
        record["record_hash"] = previous = bytes_hash(body)
        rewritten[partition][offset] = codecs.audit.encode(record)
    copy_to(kafka, "scratch.rewritten", rewritten)
    forger = f"{group_id}-forged"
    topic, ingress_partition = chain.rsplit(":", 1)
    cons = consumer(kafka, forger)
    cons.commit(
        offsets=[
            TopicPartition(topic, int(ingress_partition), 1, metadata=Head(len(run) - 1, previous).metadata())
        ],
        asynchronous=False,
    )
    cons.close()
    result = sgb_verify(kafka, "--topic", "scratch.rewritten", "--group", forger)
    assert result.returncode == 1
    assert f"chain {chain}: committed head is not signed by a trusted filter key: unsigned" in result.stdout
    assert "chain has no committed head" in result.stdout  # the other chains: nothing anchors them
    assert f"chain {chain}: audit partition {partition}, {len(run)} record(s)" in intact.stdout

    # No personal data in what verify prints.
    for result_text in (intact.stdout + intact.stderr, result.stdout + result.stderr):
        for ev in events[:5]:
            assert ev["child"]["nhs_number"] not in result_text
            assert ev["child"]["family_name"] not in result_text


def test_chains_continue_across_a_restart_and_a_rebalance(kafka: Settings, group_id: str) -> None:
    events = some_events(60)
    with RunningFilter(kafka, group_id=group_id, instance="one") as one:
        publish(kafka, *events[:20])
        audit_messages(kafka, 20)
        with RunningFilter(kafka, group_id=group_id, instance="two") as two:
            # The second process joins: partitions (and their chains) move from the first to it.
            wait_for(lambda: len(two.service._consumer.assignment()) > 0, timeout=60)
            publish(kafka, *events[20:40])
            audit_messages(kafka, 40)
            assert two.service.counts["batches"] > 0 and one.service.counts["batches"] > 0
        # The second leaves: its partitions move back to the first.
        publish(kafka, *events[40:50])
        audit_messages(kafka, 50)
    # Both stopped; a third process picks up every chain head from the committed offsets.
    with RunningFilter(kafka, group_id=group_id, instance="three"):
        publish(kafka, *events[50:])
        messages = audit_messages(kafka, len(events))

    codecs = Codecs(registry_for(kafka))
    per_chain: dict[str, list[int]] = defaultdict(list)
    for msg in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        record = codecs.audit.decode(msg.value())
        per_chain[record["chain"]].append(record["sequence"])
    assert all(seqs == list(range(len(seqs))) for seqs in per_chain.values()), "no chain forked or restarted"
    result = sgb_verify(kafka, "--group", group_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(per_chain)} chain(s), {len(messages)} chained record(s) verified" in result.stdout


def test_chains_survive_kill_minus_9_mid_batch(kafka: Settings, group_id: str, tmp_path: Path) -> None:
    events = some_events(1200)
    publish(kafka, *events)
    log = tmp_path / "filter.log"
    first = start_filter(kafka, group_id, "one", log)
    wait_for(lambda: audit_count(kafka) > 0, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert audit_count(kafka) < len(events), "the filter finished before it could be killed"
    # The same instance fences the killed one's open transaction and resumes every chain from its head.
    second = start_filter(kafka, group_id, "one", log)
    try:
        audit_messages(kafka, len(events))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    result = sgb_verify(kafka, "--group", group_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(events)} chained record(s) verified" in result.stdout
