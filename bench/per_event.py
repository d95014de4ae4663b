"""The filter's work per event without Kafka, this tree against a baseline tree, same run.

Each tree runs in its own process (PYTHONPATH set to it), alternating, several rounds:
decode the ingress bytes, validate, decide for every audience, encode each shared copy, and put the
decisions on record as that tree's filter does (main: an AuditDecision per decision, each
hashed over canonical JSON, plus a debug log line per decision; this tree: one AuditRecord
per event, hashed over its bytes). Prints microseconds per event for each step and the
ratio candidate / baseline.

  git archive main | tar -x -C /tmp/sgb-main
  .venv/bin/python bench/per_event.py --baseline-tree /tmp/sgb-main [--events 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent


def _measure(events: int) -> dict[str, float]:
    """Run in the tree on sys.path: microseconds per event for each step."""
    from confluent_kafka import TopicPartition

    import schemas
    from broker.logs import configure, get_logger
    from broker.wire.codecs import Codecs
    from broker.wire.registry import InMemoryRegistry
    from consent.engine import Engine
    from consent.filter.audit_chains import AuditChains
    from consent.policy import load
    from consent.state import ChildState
    from schemas.topics import load_declaration
    from sgb.simulate.events import Population, Simulator

    configure("INFO", "json", open(os.devnull, "w"))  # noqa: SIM115 - as the filter runs: debug filtered
    log = get_logger("consent.filter")
    organisations = load_declaration().deliveries.organisations
    engine = Engine(
        load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: o in organisations.get(str(a), [])
    )
    codecs = Codecs(InMemoryRegistry())
    serde = codecs.event
    values = [serde.encode(e) for e in Simulator(Population(2000, 7), 7).events(events)]
    chains = AuditChains(partitions=6)
    chains.learn([TopicPartition("ingress", 0, -1001)])

    class Discard:
        def produce(self, *args: Any, **kwargs: Any) -> None:
            pass

    sink = Discard()
    try:  # this tree: one record per event
        from consent.filter.auditor import EventAuditor

        auditor = EventAuditor(codecs.audit, chains, "audit")

        def audit(decisions: list[Any]) -> None:
            auditor.record(sink, decisions, time.time_ns() // 1_000_000, ("ingress", 0))

    except ImportError:  # main: one record per decision, and a log line per decision
        from datetime import UTC, datetime

        from consent.audit import audit_record  # type: ignore[attr-defined]

        def audit(decisions: list[Any]) -> None:
            now = datetime.now(UTC)
            for d in decisions:
                record, _ = chains.link(audit_record(d, now), "ingress", 0)  # type: ignore[arg-type]
                sink.produce("audit", key=d.event_id.encode(), value=codecs.audit.encode(record))
                log.debug(
                    "decided",
                    event_id=d.event_id,
                    audience=d.audience.value,
                    outcome=d.outcome.value,
                    reason=d.reason.value,
                    rule=d.rule,
                )

    from schemas.validation import validate_event

    spent = {"decode": 0.0, "validate": 0.0, "decide": 0.0, "copies": 0.0, "audit": 0.0}
    clock = time.process_time  # CPU time: another process on the machine does not count
    for value in values:
        t0 = clock()
        event = serde.decode(value)
        t1 = clock()
        validate_event(event)
        t5 = clock()
        decisions = engine.decide(event, ChildState())
        t2 = clock()
        for decision in decisions:
            if decision.event is not None:
                serde.encode(decision.event)
        t3 = clock()
        audit(decisions)
        t4 = clock()
        spent["decode"] += t1 - t0
        spent["validate"] += t5 - t1
        spent["decide"] += t2 - t5
        spent["copies"] += t3 - t2
        spent["audit"] += t4 - t3
    out = {k: v / len(values) * 1e6 for k, v in spent.items()}
    out["total"] = sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-tree", type=Path, required=True)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(_measure(args.events)))
        return
    trees = {"baseline": args.baseline_tree.resolve(), "candidate": _ROOT}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for _ in range(args.rounds):
        for name, tree in trees.items():
            done = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--inner",
                    "--events",
                    str(args.events),
                    "--baseline-tree",
                    str(tree),
                ],
                env={**os.environ, "PYTHONPATH": str(tree)},
                cwd=str(tree),
                capture_output=True,
                text=True,
                check=True,
            )
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"{args.events} synthetic events of all 14 types, median of {args.rounds} rounds, microseconds per event"
    )
    print(f"{'step':8} {'baseline':>10} {'candidate':>10} {'ratio':>7}")
    for step in ("decode", "validate", "decide", "copies", "audit", "total"):
        base = statistics.median(r[step] for r in runs["baseline"])
        cand = statistics.median(r[step] for r in runs["candidate"])
        print(f"{step:8} {base:10.1f} {cand:10.1f} {cand / base:7.2f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
