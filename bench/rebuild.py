"""A fresh filter starting at national volume (issue 21, item 5): ``bench/filter.py --rebuild-children N``.

Fills ``sg.consent.v1`` with one consent record for each of N synthetic children (keyed by a
local-authority id), then starts a filter process with a fresh group and state store and
measures the time until it has rebuilt state and made its first decision (one event published
once the filter runs: its audit record visible), its peak resident memory, and the CPU seconds
the filter process used to rebuild: on a machine shared with other work the wall time says as
much about the neighbours as about the filter, the CPU time says what the rebuild costs. With
``--baseline-tree`` the same start is measured for that tree in the same run, first.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from confluent_kafka import TopicPartition

from broker.clients import consumer, producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher
from sgb.simulate.events import Population, Simulator


def fill_consent(settings: Settings, children: int) -> float:
    """Produce one consent record per child, in no order of their keys (as a national topic holds
    them: compaction leaves each child where its last record was written); returns seconds taken.
    Children in key order would let the store append at the end of its B-tree."""
    codecs = Codecs(registry_for(settings))
    topic = settings.topic("sg.consent.v1")
    prod = producer(settings, **{"linger.ms": 50, "batch.num.messages": 10000, "compression.type": "lz4"})
    recorded = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    began = time.perf_counter()
    for i in random.Random(21).sample(range(children), children):
        record = {
            "consent_id": f"c{i}",
            "nhs_number": None,
            "la_child_id": f"B{i:09d}",
            "local_authority_code": "202",
            "audience": "FAMILY_HELP",
            "purpose": "FAMILY_HELP",
            "state": "GIVEN" if i % 3 else "REFUSED",
            "given_by": "PARENT",
            "recorded_at": recorded,
            "recorded_by": "202",
        }
        value = codecs.consent.encode(record)
        key = f"la:202:B{i:09d}|FAMILY_HELP|FAMILY_HELP".encode()
        while True:
            try:
                prod.produce(topic, key=key, value=value)
                break
            except BufferError:
                prod.poll(0.05)
        if i % 100_000 == 0:
            prod.poll(0)  # about every 100,000 records
    prod.flush(300)
    return time.perf_counter() - began


def _audits(settings: Settings) -> int:
    cons = consumer(settings, "bench-rebuild-count")
    name = settings.topic("sg.audit.decisions.v1")
    total = sum(
        cons.get_watermark_offsets(TopicPartition(name, p), timeout=10, cached=False)[1]
        for p in cons.list_topics(name, timeout=10).topics[name].partitions
    )
    cons.close()
    return total


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Start(NamedTuple):
    """What one fresh start measured."""

    running: float  # seconds to "filter running" (state rebuilt)
    first: float  # seconds to the first decision
    rss_kb: int  # peak resident memory
    cpu: float  # CPU seconds the process had used when it was running


def fresh_start(settings: Settings, tree: Path, seed: int, timeout: float = 3600) -> Start:
    """What a fresh filter's start measured."""
    group = f"bench-rebuild-{uuid.uuid4().hex[:6]}"
    log = settings.state_dir / f"{group}.log"
    env = {
        "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
        "SGB_TOPIC_PREFIX": settings.topic_prefix,
        "SGB_STATE_DIR": str(settings.state_dir),
        "SGB_LOG_FORMAT": "json",
        "PYTHONPATH": str(tree),
        "PATH": "/usr/bin:/bin",
    }
    before = _audits(settings)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", "filter", "run", "--group", group, "--instance", "r"],
        env=env,
        cwd=str(tree),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    peak, running, cpu = 0, None, 0.0
    event = next(Simulator(Population(50, seed), seed).events(1, types=("DOMESTIC_ABUSE_INCIDENT",)))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            peak = max(peak, _rss_kb(proc.pid))
            if running is None and '"filter running"' in log.read_text(errors="replace"):
                running, cpu = time.perf_counter() - began, _cpu_s(proc.pid)
                publisher = EventPublisher(settings, "POLICE")
                publisher.publish(event)
                publisher.flush()
            if running is not None and _audits(settings) > before:
                return Start(running, time.perf_counter() - began, max(peak, _rss_kb(proc.pid)), cpu)
            time.sleep(0.2)
        raise SystemExit(f"the filter did not start within {timeout:.0f} s:\n{log.read_text()[-2000:]}")
    finally:
        proc.terminate()
        proc.wait(30)


def main(settings: Settings, children: int, baseline: Path | None, candidate: Path) -> None:
    print(f"filling sg.consent.v1 with {children:,} children ...")
    filled = fill_consent(settings, children)
    print(f"    ({filled:.0f} s to produce)")
    runs = ([("baseline", baseline)] if baseline else []) + [("candidate", candidate)]
    results = {}
    for name, tree in runs:
        print(f"fresh start, {name} ...")
        results[name] = fresh_start(settings, tree, seed=len(results) + 3)
    print()
    for name, start in results.items():
        print(
            f"{name:9} {children:,} children: state rebuilt in {start.running:.1f} s "
            f"({children / start.running:,.0f} children/s), first decision at {start.first:.1f} s, "
            f"peak RSS {start.rss_kb / 1024:.0f} MB, {start.cpu:.1f} CPU s to rebuild "
            f"({children / max(start.cpu, 0.01):,.0f} children per CPU second)"
        )
    if "baseline" in results:
        base, cand = results["baseline"], results["candidate"]
        print(
            f"ratio candidate/baseline: time to first decision {cand.first / base.first:.2f}, "
            f"CPU to rebuild {cand.cpu / base.cpu:.2f}, RSS {cand.rss_kb / base.rss_kb:.2f}"
        )
