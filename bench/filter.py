"""Filter benchmark, all in one run on one broker:

(a) raw transactional pass-through of the same bytes (consume and produce, no decode);
(a') the same with the filter's output shape (bench/shaped.py): the limit the filter is judged by;
(b) the floor of any Avro-to-Avro transform: one decode and one encode per event, no Kafka;
(c) the filter with the baseline policy on a synthetic mix of all event types;
then p50/p99 end-to-end latency at 1,000 events/s offered, resident memory with
state for 1,000,000 children, and a profile of where the filter's time goes.

  .venv/bin/python bench/filter.py [--events 20000] [--children-in-state 1000000]
  .venv/bin/python bench/filter.py --rebuild-children N [--baseline-tree DIR]   (bench/rebuild.py)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

# The repository first, so that a tree's bench runs that tree's packages; bench/ last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

import rebuild
import shaped
from _kafka import bench_kafka
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from filter_profile import profile

from broker.clients import admin_client, consumer, producer
from broker.settings import Settings
from broker.wire.codecs import Codecs, EventSerde
from broker.wire.registry import InMemoryRegistry, registry_for
from consent.filter.service import FilterService
from consent.filter.store import SqliteStore
from consent.state import ChildState
from schemas.child_keys import child_key
from schemas.topics import (
    ingress_topic,
)
from sgb.simulate.events import Population, Simulator

AUDIENCES = 7


def synthetic(count: int, seed: int = 7) -> list[dict[str, Any]]:
    return list(Simulator(Population(2000, seed), seed).events(count))


def produce_all(settings: Settings, events: list[dict[str, Any]], serde: EventSerde) -> None:
    prod = producer(settings, **{"linger.ms": 20, "batch.num.messages": 10000})
    for event in events:
        key = child_key(event["child"]) or "unknown"
        topic = settings.topic(ingress_topic(event["source"]["agency"]))
        while True:
            try:
                prod.produce(topic, key=key.encode(), value=serde.encode(event))
                break
            except BufferError:
                prod.poll(0.05)
    prod.flush(60)


def committed_count(settings: Settings, logical: str, cons: Any = None) -> int:
    """Messages visible to a read_committed reader (sum of end offsets; topic starts empty).

    Pass ``cons`` when asking repeatedly: a new client every 50 ms costs the process that
    runs the filter, and the broker, a connection and its threads each time."""
    own = cons is None
    cons = consumer(settings, "bench-count") if own else cons
    name = settings.topic(logical)
    total = 0
    for partition in cons.list_topics(name, timeout=10).topics[name].partitions:
        total += cons.get_watermark_offsets(TopicPartition(name, partition), timeout=10, cached=False)[1]
    if own:
        cons.close()
    return total


# -- (a) raw transactional pass-through ---------------------------------------------------------
def raw_pass_through(settings: Settings, values: list[tuple[bytes, bytes]]) -> float:
    src, dst = settings.topic(f"bench.raw.in.{uuid.uuid4().hex[:6]}"), settings.topic("bench.raw.out")
    admin = admin_client(settings)
    for future in admin.create_topics([NewTopic(src, 6, 1), NewTopic(dst, 6, 1)]).values():
        with contextlib.suppress(Exception):  # the output topic may exist from a previous phase
            future.result()
    time.sleep(1)
    prod = producer(settings, **{"linger.ms": 20})
    for key, value in values:
        prod.produce(src, key=key, value=value)
    prod.flush(60)
    txn = producer(settings, transactional_id=f"bench-raw-{uuid.uuid4().hex[:6]}", **{"linger.ms": 5})
    txn.init_transactions(30)
    cons = consumer(settings, f"bench-raw-{uuid.uuid4().hex[:6]}")
    cons.subscribe([src])
    done, began = 0, None
    while done < len(values):
        batch = [m for m in cons.consume(500, timeout=1.0) if not m.error()]
        if not batch:
            continue
        began = began or time.perf_counter()
        txn.begin_transaction()
        for msg in batch:
            txn.produce(dst, key=msg.key(), value=msg.value())
        offsets = {}
        for msg in batch:
            offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        txn.send_offsets_to_transaction(
            [TopicPartition(t, p, o) for (t, p), o in offsets.items()], cons.consumer_group_metadata(), 30
        )
        txn.commit_transaction(30)
        done += len(batch)
    elapsed = time.perf_counter() - (began or time.perf_counter())
    cons.close()
    return len(values) / elapsed


# -- (b) decode + encode floor -----------------------------------------------------------------
def transform_floor(values: list[bytes]) -> float:
    serde = EventSerde(InMemoryRegistry())
    began = time.perf_counter()
    for value in values:
        serde.encode(serde.decode(value))
    return len(values) / (time.perf_counter() - began)


# -- (c) the filter --------------------------------------------------------------------------------
def filter_rate(settings: Settings, events: list[dict[str, Any]], serde: EventSerde) -> float:
    produce_all(settings, events, serde)
    stop = threading.Event()
    service = FilterService(settings, group_id=f"bench-{uuid.uuid4().hex[:6]}", instance="bench")
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    began = time.perf_counter()
    thread.start()
    service.ready.wait(60)
    ready = time.perf_counter()
    target = len(events)  # one audit record per event
    counter = consumer(settings, "bench-count")
    while committed_count(settings, "sg.audit.decisions.v1", counter) < target:
        time.sleep(0.05)
    elapsed = time.perf_counter() - ready
    counter.close()
    stop.set()
    thread.join(30)
    print(
        f"    (filter start-up {ready - began:.1f} s not counted; {service.counts['batches']} transactions)"
    )
    return len(events) / elapsed


def latency(settings: Settings, events: list[dict[str, Any]], serde: EventSerde, rate: float) -> list[float]:
    """Offer events at ``rate``/s to a running filter; latency = produce -> audit visible."""
    stop = threading.Event()
    service = FilterService(
        settings, group_id=f"bench-lat-{uuid.uuid4().hex[:6]}", instance="latency", batch_size=500
    )
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    service.ready.wait(60)
    time.sleep(2)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    codecs = Codecs(registry_for(settings))
    cons = consumer(settings, f"bench-lat-read-{uuid.uuid4().hex[:6]}", **{"fetch.wait.max.ms": 5})
    cons.subscribe([settings.topic("sg.audit.decisions.v1")])
    cons.consume(1, timeout=3)

    def read() -> None:
        while len(seen) < len(events) and not stop.is_set():
            for msg in cons.consume(500, timeout=0.1):
                if msg.error():
                    continue
                event_id = msg.key().decode()
                if event_id in sent and event_id not in seen:
                    seen[event_id] = time.perf_counter()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    prod = producer(settings, **{"linger.ms": 0})
    interval = 1.0 / rate
    start = time.perf_counter()
    for i, event in enumerate(events):
        due = start + i * interval
        while time.perf_counter() < due:
            time.sleep(max(0.0, min(0.001, due - time.perf_counter())))
        key = (child_key(event["child"]) or "unknown").encode()
        sent[event["event_id"]] = time.perf_counter()
        prod.produce(
            settings.topic(ingress_topic(event["source"]["agency"])), key=key, value=serde.encode(event)
        )
        prod.poll(0)
    prod.flush(30)
    deadline = time.perf_counter() + 30
    while len(seen) < len(events) and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    reader.join(10)
    thread.join(30)
    cons.close()
    del codecs
    return sorted((seen[k] - sent[k]) * 1000 for k in seen)


def memory_with_state(
    settings: Settings, children: int, events: list[dict[str, Any]], serde: EventSerde
) -> int:
    """Fill a filter's on-disk store with ``children`` states, run the filter as its own
    process over ``events`` for random children, and return its peak resident set (kB)."""
    from consent.filter.store import dumps
    from consent.state import Consent, Flag

    group, instance = f"bench-mem-{uuid.uuid4().hex[:6]}", "mem"
    path = settings.state_dir / "filter" / f"{group}.{instance}.db"
    store = SqliteStore(path)
    sample = dumps(
        ChildState(
            consents=(Consent("FAMILY_HELP", "FAMILY_HELP", "GIVEN", "PARENT", events[0]["occurred_at"]),),
            child_protection_plan=Flag(True, "202"),
            school_urn="100000",
            gp_practice_ods="F83004",
            local_authority_code="202",
        )
    )
    store._db.execute("BEGIN")
    store._db.executemany(
        "INSERT INTO child_state (key, state) VALUES (?, ?)",
        ((f"nhs:bench{i:010d}", sample) for i in range(children)),
    )
    store._db.execute("COMMIT")
    store.close()
    produce_all(settings, events, serde)
    env = {
        "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
        "SGB_TOPIC_PREFIX": settings.topic_prefix,
        "SGB_STATE_DIR": str(settings.state_dir),
        "SGB_LOG_FORMAT": "json",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", "filter", "run", "--group", group, "--instance", instance],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    counter = consumer(settings, "bench-count")
    target = committed_count(settings, "sg.audit.decisions.v1", counter) + len(events)
    peak = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        peak = max(peak, _rss_kb(proc.pid))
        if committed_count(settings, "sg.audit.decisions.v1", counter) >= target:
            break
        time.sleep(0.2)
    counter.close()
    peak = max(peak, _rss_kb(proc.pid))
    proc.terminate()
    proc.wait(30)
    return peak


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Filter benchmark")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--latency-events", type=int, default=10_000)
    parser.add_argument("--children-in-state", type=int, default=1_000_000)
    parser.add_argument(
        "--rebuild-children",
        type=int,
        default=0,
        metavar="N",
        help="Only measure a fresh filter's start with N children in sg.consent.v1 (bench/rebuild.py).",
    )
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="With --rebuild-children: also this tree."
    )
    args = parser.parse_args()
    if args.rebuild_children:
        with bench_kafka() as settings:
            rebuild.main(settings, args.rebuild_children, args.baseline_tree, _HERE.parent)
        return

    print(f"generating {args.events} synthetic events of all 14 types ...")
    events = synthetic(args.events)
    serde = EventSerde(InMemoryRegistry())
    values = [serde.encode(e) for e in events]
    mean_size = statistics.mean(len(v) for v in values)
    with bench_kafka() as settings:
        real_serde = EventSerde(registry_for(settings))
        keyed = [((child_key(e["child"]) or "x").encode(), real_serde.encode(e)) for e in events]
        print("(a) raw transactional pass-through ...")
        raw = raw_pass_through(settings, keyed)
        print("(a') pass-through with the filter's output shape (the filter's real I/O limit) ...")
        shape = shaped.output_shape(events)
        limit = shaped.shaped_pass_through(settings, keyed, shape)
        print("(b) decode + encode floor ...")
        floor = transform_floor(values)
        print("(c) the filter, baseline policy ...")
        filt = filter_rate(settings, events, real_serde)
        print(f"latency at 1,000 events/s offered ({args.latency_events} events) ...")
        lat_events = synthetic(args.latency_events, seed=11)
        lat = latency(settings, lat_events, real_serde, 1000.0)
        print(f"memory with {args.children_in_state:,} children in state ...")
        mem_events = synthetic(5000, seed=13)
        rss = memory_with_state(settings, args.children_in_state, mem_events, real_serde)

    print()
    print(f"events: {args.events:,} of all 14 types, mean {mean_size:.0f} bytes; {AUDIENCES} audiences each")
    messages = statistics.mean(len(v) for v in shape)
    size = statistics.mean(sum(len(x) for x in v) for v in shape)
    print(f"(a) raw transactional pass-through   {raw:>10,.0f} events/s   (one message out per event)")
    print(
        f"(a') filter-shaped pass-through      {limit:>10,.0f} events/s   ({messages:.1f} messages, "
        f"{size:,.0f} bytes out per event)"
    )
    print(f"(b) decode+encode floor (no Kafka)   {floor:>10,.0f} events/s")
    print(
        f"(c) filter, baseline policy          {filt:>10,.0f} events/s   = {filt / floor:.2f} x (b), "
        f"{filt / limit:.2f} x (a')   (issue 21 target: >= 0.6 x (a'))"
    )
    if lat:
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"latency at 1,000 events/s offered:  p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(lat):,} events "
            "(target p99 <= 50 ms)"
        )
    print(
        f"resident memory, {args.children_in_state:,} children in state: peak {rss / 1024:.0f} MB "
        "(target <= 500 MB)"
    )
    print()
    print("profile of decode -> decide/redact -> encode (2,000 events, no Kafka), by own time:")
    print(profile(events[:2000]))


if __name__ == "__main__":
    main()
