"""Identity benchmark: how well the child index links one child's records across agencies.

A synthetic population (``bench/identity_population.py``: at least 100,000 children, one
record per agency, realistic corruption, households and twins) is fed record by record to
the resolver the filter runs (deterministic evidence, blocking, Fellegi-Sunter scoring,
the baseline policy's thresholds). Against the truth it reports, over pairs of one child's
identifiers: precision of automatic links, recall (linked or queued for a person), the
review-queue share, and the cost of one event's lookup. The baseline, from the same run, is
the links the identifiers alone make (a shared NHS number, an agency's cross-reference).

  .venv/bin/python bench/identity.py [--children 100000] [--seed 17]
  .venv/bin/python bench/identity.py --train   # estimate model.json with Splink (DuckDB), then measure

``--train`` needs the ``identity-train`` extra (``pip install -e '.[identity-train]'``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

from identity_population import population, records

from consent.identity.links import LINKED, ChildIndex
from consent.identity.resolver import MemoryDemographics, Resolver
from consent.identity.scoring import MODEL_PATH, MatchModel
from consent.policy import load
from schemas.child_keys import child_identifiers


class _Components:
    """Union-find over identifiers."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(key, key) != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _components(index: ChildIndex, states: set[str], rules: set[str] | None = None) -> _Components:
    found = _Components()
    for link in index.links():
        if link.state in states and (rules is None or link.rule in rules):
            found.union(link.a, link.b)
    return found


def measure(children: int, seed: int, model: MatchModel) -> dict[str, float]:
    policy = load()
    people = population(children, seed)
    recs = records(people, seed)
    index, demographics = ChildIndex(), MemoryDemographics()
    resolver = Resolver(index, demographics, model, policy.identity)
    truth: dict[str, int] = {}
    costs: list[float] = []
    began = time.perf_counter()
    for number, (child, record) in enumerate(recs):
        keys = child_identifiers(record)
        for key in keys:
            truth[key] = child
        event = {"event_id": str(number), "child": record}
        start = time.perf_counter()
        resolver.observe(event)
        resolver.resolve(keys[0])
        costs.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - began
    by_child: dict[int, list[str]] = defaultdict(list)
    for key, child in truth.items():
        by_child[child].append(key)
    true_pairs = sum(len(keys) * (len(keys) - 1) // 2 for keys in by_child.values())

    linked = _components(index, {LINKED})
    found = _components(index, {LINKED, "CANDIDATE"})
    deterministic = _components(index, {LINKED}, {"AGENCY_XREF"})
    clusters: dict[str, list[str]] = defaultdict(list)
    for key in truth:
        clusters[linked.find(key)].append(key)
    linked_pairs = wrong = 0
    for keys in clusters.values():
        for a, b in combinations(keys, 2):
            linked_pairs += 1
            wrong += truth[a] != truth[b]
    recalled = queued_only = baseline = 0
    for keys in by_child.values():
        for a, b in combinations(keys, 2):
            in_linked = linked.find(a) == linked.find(b)
            recalled += in_linked or found.find(a) == found.find(b)
            queued_only += not in_linked and found.find(a) == found.find(b)
            baseline += deterministic.find(a) == deterministic.find(b)
    links = list(index.links())
    candidates = sum(link.state == "CANDIDATE" for link in links)
    automatic = [link for link in links if link.rule == "DEMOGRAPHIC_MATCH" and link.state == LINKED]
    auto_wrong = sum(truth[link.a] != truth[link.b] for link in automatic)
    costs.sort()
    return {
        "children": children,
        "records": len(recs),
        "identifiers": len(truth),
        "true pairs": true_pairs,
        "precision (automatic links, pairs)": 1 - wrong / max(linked_pairs, 1),
        "precision (demographic links)": 1 - auto_wrong / max(len(automatic), 1),
        "demographic links": len(automatic),
        "wrong demographic links": auto_wrong,
        "recall (linked or queued)": recalled / true_pairs,
        "recall (linked automatically)": (recalled - queued_only) / true_pairs,
        "baseline recall (identifiers only)": baseline / true_pairs,
        "review candidates": candidates,
        "review-queue share (candidates per record)": candidates / len(recs),
        "true pairs left to review": queued_only / true_pairs,
        "lookup mean us": statistics.fmean(costs) * 1e6,
        "lookup p50 us": costs[len(costs) // 2] * 1e6,
        "lookup p99 us": costs[int(len(costs) * 0.99)] * 1e6,
        "records per s": len(recs) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--train", action="store_true", help="estimate model.json with Splink first")
    parser.add_argument("--train-children", type=int, default=30_000, help="population size to train on")
    args = parser.parse_args()
    if args.train:
        from identity_train import train

        model, seconds = train(args.train_children, args.seed + 1000)
        MODEL_PATH.write_text(
            model.to_json(estimated_by=f"Splink EM on DuckDB, {args.train_children} children")
        )
        print(f"model estimated with Splink in {seconds:.1f} s and written to {MODEL_PATH}")
    model = MatchModel.load()
    results = measure(args.children, args.seed, model)
    width = max(len(name) for name in results)
    for name, value in results.items():
        shown = (
            f"{value:.5f}"
            if isinstance(value, float) and value < 1.0001 and "us" not in name
            else f"{value:,.1f}"
        )
        print(f"{name.ljust(width)}  {shown}")


if __name__ == "__main__":
    main()
