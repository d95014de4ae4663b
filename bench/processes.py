"""The filter and a hub as their own processes, this tree against a baseline tree, same run.

Both trees run on the same broker, the same events and the same machine, alternating
(baseline, candidate, baseline, candidate ...), so load from elsewhere falls on both:

  throughput   a fresh filter group over N events published afresh for it (topics of their
               own: on topics already decided, the share ledger makes a filter skip every event):
               events/s from "filter running" until the group's committed offsets reach the end
  latency      connector publish() -> the hub's JSONL sink has the line, with the filter and
               the hub (`sgb hub subscribe ... --sink jsonl:`) each in its own process, events
               offered at a steady rate to one MASH organisation; p50/p99 ms, the median over
               the rounds, which alternate who goes first, after one uncounted warm-up run

The baseline tree is any checkout of sgb, for example main's files:
  git archive main | tar -x -C /tmp/sgb-main
  .venv/bin/python bench/processes.py --baseline-tree /tmp/sgb-main [--events 20000] \\
      [--rates 50,200,1000] [--rounds 2]
Processes run this virtual environment's Python with PYTHONPATH set to the tree.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

from _kafka import bench_kafka
from confluent_kafka import TopicPartition

import schemas
from broker.clients import consumer
from broker.cluster.topics import apply
from broker.settings import Settings
from connectors.runtime.publisher import EventPublisher
from consent.engine import Engine
from consent.policy import load
from consent.state import ChildState
from schemas.topics import INGRESS_TOPICS, load_declaration
from sgb.simulate.events import Population, Simulator


def _env(settings: Settings, tree: Path) -> dict[str, str]:
    return {
        "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
        "SGB_TOPIC_PREFIX": settings.topic_prefix,
        "SGB_STATE_DIR": str(settings.state_dir),
        "SGB_LOG_FORMAT": "json",
        "SGB_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(tree),
        "PATH": "/usr/bin:/bin",
    }


def _start(settings: Settings, tree: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", *args],
        env=_env(settings, tree),
        cwd=str(tree),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def _wait_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return time.perf_counter()
        if proc.poll() is not None:
            raise SystemExit(f"process exited early:\n{log.read_text()[-2000:]}")
        time.sleep(0.01)
    raise SystemExit(f"no {text!r} within {timeout} s:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _ingress_ends(settings: Settings) -> list[TopicPartition]:
    cons = consumer(settings, "bench-ends")
    out = []
    for logical in INGRESS_TOPICS:
        name = settings.topic(logical)
        for p in cons.list_topics(name, timeout=10).topics[name].partitions:
            high = cons.get_watermark_offsets(TopicPartition(name, p), timeout=10, cached=False)[1]
            if high > 0:
                out.append(TopicPartition(name, p, high))
    cons.close()
    return out


def _caught_up(cons: Any, ends: list[TopicPartition]) -> bool:
    """Whether the group of ``cons`` (a consumer that never subscribes, so never joins it)
    has committed every partition up to ``ends``."""
    committed = {(tp.topic, tp.partition): tp.offset for tp in cons.committed(ends, timeout=10)}
    return all(committed.get((tp.topic, tp.partition), -1) >= tp.offset for tp in ends)


def _published(settings: Settings, events: list[dict[str, Any]]) -> Settings:
    """``events`` published to topics of their own (a fresh prefix), as connectors publish them.

    Every throughput round needs its own: the share ledger of a topic prefix tells a later
    filter group that its events were already decided, and that group then skips them (it
    measured five times faster than a filter deciding them)."""
    settings = settings.model_copy(
        update={"topic_prefix": f"{settings.topic_prefix}t{uuid.uuid4().hex[:6]}."}
    )
    apply(settings, load_declaration())
    by_agency = Counter(e["source"]["agency"] for e in events)
    publishers = {agency: EventPublisher(settings, agency) for agency in by_agency}
    for event in events:
        publishers[event["source"]["agency"]].publish(event)
    for publisher in publishers.values():
        publisher.flush(120)
    return settings


def throughput(settings: Settings, tree: Path, events: list[dict[str, Any]], work: Path) -> float:
    """Events/s of a fresh filter process deciding ``events``, published afresh for it."""
    settings = _published(settings, events)
    ends = _ingress_ends(settings)
    group = f"bench-proc-{uuid.uuid4().hex[:6]}"
    log = work / f"{group}.log"
    proc = _start(settings, tree, ["filter", "run", "--group", group, "--instance", "t"], log)
    watcher = consumer(settings, group)  # one client for every check: a new one each time costs CPU
    try:
        began = _wait_line(log, '"filter running"', proc)
        while not _caught_up(watcher, ends):
            if proc.poll() is not None:
                raise SystemExit(log.read_text()[-2000:])
            time.sleep(0.05)
        return len(events) / (time.perf_counter() - began)
    finally:
        watcher.close()
        _stop(proc)


def _mash_events(count: int, seed: int) -> tuple[list[dict[str, Any]], str]:
    """Events that all go to one MASH organisation (decided offline on empty state, as a
    fresh filter decides them), and that organisation."""
    organisations = load_declaration().deliveries.organisations
    engine = Engine(
        load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: o in organisations.get(str(a), [])
    )
    candidates = list(
        Simulator(Population(2000, seed), seed).events(count * 6, types=("DOMESTIC_ABUSE_INCIDENT",))
    )
    to: dict[str, list[dict[str, Any]]] = {}
    for event in candidates:
        for decision in engine.decide(event, ChildState()):
            if decision.audience.value == "MASH" and decision.event is not None:
                to.setdefault(str(decision.organisation), []).append(event)
    organisation, chosen = max(to.items(), key=lambda kv: len(kv[1]))
    return chosen[:count], organisation


def latency(
    settings: Settings, tree: Path, events: list[dict[str, Any]], organisation: str, rate: float, work: Path
) -> list[float]:
    """publish() -> line in the hub's sink, filter and hub in their own processes; ms, sorted.

    Each run has topics of its own (a fresh prefix), so no run reads another's backlog."""
    tag = uuid.uuid4().hex[:6]
    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}l{tag}."})
    apply(settings, load_declaration())
    sink = work / f"hub-{tag}.jsonl"
    flog, hlog = work / f"filter-{tag}.log", work / f"hub-{tag}.log"
    filt = _start(settings, tree, ["filter", "run", "--group", f"bench-lf-{tag}", "--instance", "l"], flog)
    hub = _start(
        settings,
        tree,
        ["hub", "subscribe", "MASH", organisation, "--sink", f"jsonl:{sink}", "--group", f"bench-lh-{tag}"],
        hlog,
    )
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def tail() -> None:
        offset = 0
        while not done.is_set():
            if sink.exists():
                with sink.open("rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
                cut = data.rfind(b"\n") + 1
                offset += cut
                now = time.perf_counter()
                for line in data[:cut].splitlines():
                    event_id = _event_id(line)
                    if event_id in sent and event_id not in seen:
                        seen[event_id] = now
            time.sleep(0.001)

    reader = threading.Thread(target=tail, daemon=True)
    try:
        _wait_line(flog, '"filter running"', filt)
        _wait_line(hlog, "partitions assigned", hub)
        publisher = EventPublisher(settings, "POLICE")
        warm = events[:20]  # the first publish registers schemas and opens connections
        for event in warm:
            publisher.publish(event)
        publisher.flush()
        time.sleep(2)
        reader.start()
        interval = 1.0 / rate
        start = time.perf_counter()
        for i, event in enumerate(events[20:]):
            due = start + i * interval
            while time.perf_counter() < due:
                time.sleep(max(0.0, min(0.001, due - time.perf_counter())))
            sent[event["event_id"]] = time.perf_counter()
            publisher.publish(event)
        publisher.flush()
        deadline = time.perf_counter() + 30
        while len(seen) < len(sent) and time.perf_counter() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        _stop(hub)
        _stop(filt)
    if len(seen) < len(sent):
        print(f"    ({len(sent) - len(seen)} of {len(sent)} events not seen by the hub)")
    return sorted((seen[k] - sent[k]) * 1000 for k in seen)


def _event_id(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    event = record.get("event") if isinstance(record.get("event"), dict) else record
    value = event.get("event_id") if isinstance(event, dict) else None
    return str(value) if value is not None else None


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    # Stopped with SIGTERM, still stop the broker and the processes this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-tree", type=Path, required=True)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rates", default="50,200,1000", help="Offered events/s for latency; empty: none.")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    trees = {"baseline": args.baseline_tree.resolve(), "candidate": _ROOT}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    print(f"load average at start: {_load()}")
    with bench_kafka() as settings:
        work = settings.state_dir / "bench-processes"
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_throughput:
            events = list(Simulator(Population(2000, 7), 7).events(args.events))
            # Each round decides the events on topics of their own: on topics a filter group had
            # already decided, a later group skips every event through the share ledger.
            for round_ in range(args.rounds):
                for name, tree in trees.items():
                    rate = throughput(settings, tree, events, work)
                    results[name].setdefault("throughput", []).append(rate)
                    print(f"  round {round_ + 1} {name:9} filter {rate:8,.0f} events/s   (load {_load()})")
        rates = [float(r) for r in args.rates.split(",") if r]
        if rates:
            # Uncounted: the broker's first transactions and fetches after its start run cold
            # (class loading, JIT), and whichever tree went first measured twice as slow.
            warm, organisation = _mash_events(int(rates[0] * 5) + 20, seed=5)
            latency(settings, trees["candidate"], warm, organisation, rates[0], work)
        for rate in rates:
            count = int(rate * args.latency_seconds) + 20
            events, organisation = _mash_events(count, seed=int(rate) + 11)
            for round_ in range(args.rounds):
                # Alternate who goes first (baseline, candidate; candidate, baseline; ...).
                order = list(trees.items()) if round_ % 2 == 0 else list(reversed(trees.items()))
                for name, tree in order:
                    lat = latency(settings, tree, events, organisation, rate, work)
                    results[name].setdefault(f"p50@{rate:g}", []).append(_pct(lat, 0.5))
                    results[name].setdefault(f"p99@{rate:g}", []).append(_pct(lat, 0.99))
                    print(
                        f"  round {round_ + 1} {name:9} at {rate:6g} events/s: p50 {_pct(lat, 0.5):6.1f} ms, "
                        f"p99 {_pct(lat, 0.99):6.1f} ms over {len(lat)} events (MASH {organisation}; load {_load()})"
                    )
    print()
    print(f"{'figure':16} {'baseline':>12} {'candidate':>12} {'ratio':>8}")
    for figure, values in results["candidate"].items():
        base = statistics.median(results["baseline"][figure])
        cand = statistics.median(values)
        print(f"{figure:16} {base:12,.1f} {cand:12,.1f} {cand / base:8.2f}")
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
