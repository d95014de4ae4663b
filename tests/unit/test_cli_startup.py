"""``sgb policy evaluate`` is a governance tool people call in loops (issue 16): its start-up
must not pay for the Kafka client, the Avro codec or the logging stack it never uses. The
time itself is measured by ``bench/policy_evaluate.py``; this checks what it loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from factories import event

from schemas.jsonform import to_json

HEAVY = (
    "confluent_kafka",
    "fastavro",
    "structlog",
    "rich",
    "pydantic_settings",
    "httpx",
    "aiohttp",
    "duckdb",
)

PROBE = """
import sys
from sgb.cli import main
main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("LOADED", " ".join(loaded))
"""


def test_policy_evaluate_loads_no_kafka_codec_or_logging_stack(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(to_json(event("EMERGENCY_ATTENDANCE"))), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", "policy", "evaluate", "--event", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"SGB_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    decisions = json.loads(done.stdout[: done.stdout.rindex("LOADED")])["decisions"]
    assert len(decisions) == 7  # it answered: one decision per candidate audience
    assert done.stdout.rsplit("LOADED", 1)[1].split() == []
