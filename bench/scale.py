"""Scaling benchmark: one filter process against two, same synthetic load, same broker.

Each run gets a fresh topic prefix on the one broker. The filter processes (``sgb filter
run``, each its own Python process, in one consumer group) are started first and given
time to settle their partitions; then the same synthetic events (all 14 types) are
produced as fast as the producer goes, and the clock runs from the first event produced
until every event's 7 audit records are visible to a read_committed reader (deliveries
commit in the same transactions). Prints events/s for each run and the scaling factor.

    .venv/bin/python bench/scale.py [--events 20000] [--processes 1,2]

SGB_BENCH_BOOTSTRAP=host:port uses a broker you already run; otherwise one is started
(bench/_kafka.py). On a two-core machine the broker, the producer and the filters share
the cores, so the factor shows contention as much as scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

# The repository first, so that a tree's bench runs that tree's packages. (No bench module
# may be named like a package: bench/ is on the path as the script's folder.)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _kafka import bench_kafka
from confluent_kafka import TopicPartition

from broker.clients import consumer, producer
from broker.cluster.topics import apply
from broker.settings import Settings
from broker.wire.codecs import EventSerde
from broker.wire.registry import registry_for
from schemas.child_keys import child_key
from schemas.topics import ingress_topic, load_declaration
from sgb.simulate.events import Population, Simulator

AUDIENCES = 7
INGRESS_PARTITIONS = 24  # four ingress topics of six partitions: the most processes a group can use


def audits_visible(settings: Settings) -> int:
    """Audit records a read_committed reader sees (end offsets are last stable offsets)."""
    cons = consumer(settings, "bench-scale-count")
    name = settings.topic("sg.audit.decisions.v1")
    try:
        partitions = cons.list_topics(name, timeout=10).topics[name].partitions
        return sum(
            cons.get_watermark_offsets(TopicPartition(name, p), timeout=10, cached=False)[1]
            for p in partitions
        )
    finally:
        cons.close()


def start_filters(settings: Settings, count: int, logs: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    env = dict(
        os.environ,
        SGB_BOOTSTRAP_SERVERS=settings.bootstrap,
        SGB_TOPIC_PREFIX=settings.topic_prefix,
        SGB_STATE_DIR=str(settings.state_dir),
        SGB_LOG_FORMAT="json",
    )
    group = f"bench-scale-{uuid.uuid4().hex[:6]}"
    out = []
    for i in range(count):
        log = logs / f"{settings.topic_prefix}filter-{i}.log"
        cmd = [sys.executable, "-m", "sgb.cli", "filter", "run", "--group", group, "--instance", f"p{i}"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        out.append((proc, log))
    return out


def assigned(log: Path) -> int:
    """Partitions a filter holds now, from its log (assigned minus revoked)."""
    held = 0
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("event") == "partitions assigned":
            held += record.get("count", 0)
        elif record.get("event") == "partitions revoked":
            held -= record.get("count", 0)
    return held


def wait_settled(filters: list[tuple[subprocess.Popen[bytes], Path]], timeout: float = 120.0) -> None:
    """Until every process holds partitions and together they hold all of them, steadily."""
    deadline = time.monotonic() + timeout
    steady_since = None
    while time.monotonic() < deadline:
        for proc, log in filters:
            if proc.poll() is not None:
                raise SystemExit(f"a filter exited during start; see {log}")
        held = [assigned(log) for _, log in filters]
        if all(h > 0 for h in held) and sum(held) == INGRESS_PARTITIONS:
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since > 3:
                return
        else:
            steady_since = None
        time.sleep(0.2)
    raise SystemExit("the filters did not settle their partitions in time")


def run(base: Settings, events: list[dict[str, Any]], processes: int, logs: Path) -> float:
    """Events per second with ``processes`` filter processes on a fresh topic prefix."""
    settings = base.model_copy(
        update={
            "topic_prefix": f"s{uuid.uuid4().hex[:8]}.",
            "state_dir": base.state_dir / f"scale-{processes}",
        }
    )
    apply(settings, load_declaration())
    serde = EventSerde(registry_for(settings))
    encoded = [
        (
            (child_key(e["child"]) or "x").encode(),
            settings.topic(ingress_topic(e["source"]["agency"])),
            serde.encode(e),
        )
        for e in events
    ]
    filters = start_filters(settings, processes, logs)
    try:
        wait_settled(filters)
        prod = producer(settings, **{"linger.ms": 20, "batch.num.messages": 10000})
        began = time.perf_counter()
        for key, topic, value in encoded:
            while True:
                try:
                    prod.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    prod.poll(0.05)
        prod.flush(120)
        target = len(events)  # one audit record per event, carrying its AUDIENCES decisions
        deadline = time.monotonic() + 900
        while audits_visible(settings) < target:
            if time.monotonic() > deadline:
                raise SystemExit(f"{processes} process(es) did not finish within 15 minutes")
            time.sleep(0.1)
        elapsed = time.perf_counter() - began
    finally:
        for proc, _ in filters:
            proc.terminate()
        for proc, _ in filters:
            proc.wait(60)
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="One filter process against two")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts to compare")
    args = parser.parse_args()
    counts = [int(x) for x in args.processes.split(",")]
    print(f"generating {args.events:,} synthetic events of all 14 types ...")
    events = list(Simulator(Population(5000, 17), 17).events(args.events))
    rates: dict[int, float] = {}
    with bench_kafka() as settings:
        logs = settings.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for count in counts:
            print(f"{count} filter process(es) ...", flush=True)
            rates[count] = run(settings, events, count, logs)
            print(f"  {rates[count]:,.0f} events/s", flush=True)
    print()
    print(
        f"events: {args.events:,} of all 14 types, {AUDIENCES} decisions each in one audit record, one broker, "
        f"{os.cpu_count()} CPU cores shared by broker, producer and filters"
    )
    base = rates[counts[0]]
    for count in counts:
        print(
            f"{count} filter process(es): {rates[count]:>10,.0f} events/s   scaling factor "
            f"{rates[count] / base:.2f} x ({count} process(es) / {counts[0]})"
        )


if __name__ == "__main__":
    main()
