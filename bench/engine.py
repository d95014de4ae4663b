"""The engine with and without its per-combination choices (issue 21, item 3), same run.

    .venv/bin/python bench/engine.py [--events 20000] [--rounds 5] [--children 20000]

Decides the same simulated events (all 14 types, a population of ``--children``) with an
engine that chooses each audience's rule once per combination of what the rules read and
with one that never shares a choice, alternating rounds, and prints the CPU microseconds
per event of each (medians of the rounds; CPU time, which a shared machine blurs less than
wall time), their ratio and the cache's hit rate. Equality of the two is proved by
``tests/unit/test_engine_combinations.py``, not here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this tree's packages

import schemas
from consent.engine import Engine
from consent.policy import load
from consent.state import ChildState
from schemas.topics import load_declaration
from sgb.simulate.events import Population, Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--children", type=int, default=20000)
    args = parser.parse_args()
    organisations = load_declaration().deliveries.organisations
    policy = load()
    schema = schemas.load("SafeguardingEvent")
    events = list(Simulator(Population(args.children, 7), 7).events(args.events))
    state = ChildState()
    per_event: dict[str, list[float]] = {"uncached": [], "cached": []}
    hits = misses = 0
    for _ in range(args.rounds):
        for name, size in (("uncached", 0), ("cached", 4096)):
            engine = Engine(
                policy, schema, b"k" * 32, lambda a, o: o in organisations.get(str(a), []), combinations=size
            )
            began = time.process_time()
            for event in events:
                engine.decide(event, state)
            per_event[name].append((time.process_time() - began) / len(events) * 1e6)
            if size:
                hits, misses = engine.combination_hits()
    base, cached = (statistics.median(per_event[n]) for n in ("uncached", "cached"))
    print(f"{args.events:,} events, {args.rounds} rounds, CPU µs per event (median):")
    print(f"  baseline, no shared choices   {base:8.1f}")
    print(f"  candidate, per combination    {cached:8.1f}")
    print(f"  ratio candidate/baseline      {cached / base:8.2f}")
    print(f"  combinations: {misses:,} decided, {hits:,} reused ({hits / max(1, hits + misses):.1%})")


if __name__ == "__main__":
    main()
