"""The filter's transaction cycle alone, with Nagle's algorithm on (librdkafka's default) and off.

    .venv/bin/python bench/transactions.py [--cycles 300] [--messages 12] [--rounds 3]

One cycle is what the filter does per batch, less the deciding: begin a transaction, produce
``--messages`` small records spread over the partitions of four topics, send the consumed
offsets, commit. Both settings run on the same broker, alternating round by round, and the
figures are milliseconds per step (median and p99 over every cycle of every round).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

from _kafka import bench_kafka
from confluent_kafka import Producer, TopicPartition

from broker.clients import consumer, producer
from broker.settings import Settings

TOPICS = ("sg.audit.decisions.v1", "sg.shares.v1", "sg.status.v1", "sg.identity.links.v1")


def _cycles(settings: Settings, nagle_off: bool, cycles: int, messages: int) -> dict[str, list[float]]:
    group = f"bench-txn-{uuid.uuid4().hex[:6]}"
    cons = consumer(settings, group)
    prod: Producer = producer(
        settings,
        transactional_id=group,
        **{
            "linger.ms": 2,
            "retry.backoff.ms": 5,
            "retry.backoff.max.ms": 100,
            "socket.nagle.disable": nagle_off,
        },
    )
    prod.init_transactions(30)
    names = [settings.topic(t) for t in TOPICS]
    ingress = settings.topic("sg.ingress.police.v1")
    steps: dict[str, list[float]] = {"begin+produce": [], "send_offsets": [], "commit": [], "cycle": []}
    for i in range(cycles):
        t0 = time.perf_counter()
        prod.begin_transaction()
        for m in range(messages):
            prod.produce(names[m % len(names)], key=f"{i}-{m}".encode(), value=b"x" * 200, partition=m % 6)
        t1 = time.perf_counter()
        prod.send_offsets_to_transaction(
            [TopicPartition(ingress, 0, i + 1)], cons.consumer_group_metadata(), 20
        )
        t2 = time.perf_counter()
        prod.commit_transaction(30)
        t3 = time.perf_counter()
        for name, value in (
            ("begin+produce", t1 - t0),
            ("send_offsets", t2 - t1),
            ("commit", t3 - t2),
            ("cycle", t3 - t0),
        ):
            steps[name].append(value * 1000)
    cons.close()
    return steps


def _p99(values: list[float]) -> float:
    """The 99th percentile of sorted ``values``."""
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--messages", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"nagle on": {}, "nagle off": {}}
    with bench_kafka() as settings:
        _cycles(settings, True, 50, args.messages)  # uncounted: the broker's first transactions run cold
        for round_ in range(args.rounds):
            order = [("nagle on", False), ("nagle off", True)]
            for name, off in order if round_ % 2 == 0 else reversed(order):
                for step, values in _cycles(settings, off, args.cycles, args.messages).items():
                    results[name].setdefault(step, []).extend(values)
    print(f"{args.rounds} rounds x {args.cycles} cycles of {args.messages} messages, ms per step")
    print(f"{'step':14} {'on p50':>8} {'on p99':>8} {'off p50':>8} {'off p99':>8} {'p50 ratio':>10}")
    for step in results["nagle on"]:
        on, off = sorted(results["nagle on"][step]), sorted(results["nagle off"][step])
        print(
            f"{step:14} {statistics.median(on):8.2f} {_p99(on):8.2f} {statistics.median(off):8.2f} "
            f"{_p99(off):8.2f} {statistics.median(off) / statistics.median(on):10.2f}"
        )


if __name__ == "__main__":
    main()
