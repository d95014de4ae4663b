"""``sgb policy evaluate`` time per call, against the start-up of the same interpreter, same run.

    .venv/bin/python bench/policy_evaluate.py [--calls 10]

Prints the median wall time of: a bare interpreter; ``sgb --version`` (the command's own
start-up); ``sgb policy evaluate`` on one synthetic event (target: under 0.15 s); the time an
event of ``--events`` with a thousand of them (the start-up paid once); and, in
process, reading the baseline policy with the pure-Python and the C YAML loader and one
evaluation by the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

_HERE = Path(__file__).resolve().parent
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE.parent / "tests"),
]

from factories import event

from consent.explain import explain
from consent.policy import BASELINE, load
from consent.state import ChildState
from schemas.jsonform import to_json
from schemas.topics import load_declaration

#: Events in the --events run.
BATCH = 1000


def median_of(calls: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    calls = parser.parse_args().calls
    attendance = event(
        "EMERGENCY_ATTENDANCE",
        detail_values={"arrival_at": datetime(2026, 11, 21, 2, 10, tzinfo=UTC), "site_ods_code": "RRV03"},
    )
    attendance["child"]["police_person_reference"] = "TP-0001"
    workdir = Path(tempfile.mkdtemp(prefix="sgb-bench-evaluate-"))
    path = workdir / "event.json"
    path.write_text(json.dumps(to_json(attendance)), encoding="utf-8")
    env = {**os.environ, "SGB_STATE_DIR": str(workdir / "state")}

    def command(*args: str) -> Callable[[], object]:
        return lambda: subprocess.run(
            [sys.executable, *args], env=env, check=True, capture_output=True, timeout=60
        )

    command("-m", "sgb.cli", "policy", "evaluate", "--event", str(path))()  # keys made, caches warm
    bare = median_of(calls, command("-c", "pass"))
    version = median_of(calls, command("-m", "sgb.cli", "--version"))
    evaluate = median_of(calls, command("-m", "sgb.cli", "policy", "evaluate", "--event", str(path)))
    batch = workdir / "events.ndjson"
    with batch.open("w", encoding="utf-8") as out:
        for n in range(BATCH):
            out.write(json.dumps({**to_json(attendance), "event_id": str(uuid.UUID(int=n + 1))}) + "\n")
    in_batch = median_of(
        max(1, calls // 3), command("-m", "sgb.cli", "policy", "evaluate", "--events", str(batch))
    )
    text = BASELINE.read_text(encoding="utf-8")
    python_yaml = median_of(calls, lambda: yaml.load(text, Loader=yaml.SafeLoader))
    c_yaml = median_of(calls, lambda: yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    policy, declaration, as_json = load(), load_declaration(), json.loads(path.read_text(encoding="utf-8"))
    engine = median_of(calls, lambda: explain(policy, as_json, ChildState(), declaration, b"k" * 32))
    print(f"bare interpreter          {bare * 1000:7.1f} ms")
    print(f"sgb --version (start-up)  {version * 1000:7.1f} ms")
    print(f"sgb policy evaluate       {evaluate * 1000:7.1f} ms a call (target < 150 ms)")
    print(
        f"sgb policy evaluate --events, {BATCH:,} events: {in_batch * 1000 / BATCH:7.1f} ms an event "
        f"({in_batch:.2f} s a run)"
    )
    print(f"  baseline YAML, Python   {python_yaml * 1000:7.1f} ms")
    print(f"  baseline YAML, C        {c_yaml * 1000:7.1f} ms  (libyaml: {yaml.__with_libyaml__})")
    print(f"  engine, one evaluation  {engine * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
