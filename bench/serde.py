"""Serde benchmark: sgb's framed Avro against fastavro's raw schemaless rates, same event, same run.

    .venv/bin/python bench/serde.py [--events 50000] [--repeat 5]

Prints events/s for encode and decode, the typical event's size, and the overhead of
the Confluent framing and schema lookup (target: within 10% of raw).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

_HERE = Path(__file__).resolve().parent
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE.parent / "tests"),
]

from factories import domestic_abuse_incident

import schemas
from broker.wire.codecs import EventSerde
from broker.wire.registry import InMemoryRegistry


def rate(fn: Callable[[], None], n: int, repeat: int) -> float:
    """Median events/s over ``repeat`` runs of ``n`` calls."""
    results = []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(n):
            fn()
        results.append(n / (time.perf_counter() - began))
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    event = domestic_abuse_incident()
    parsed = schemas.parsed("SafeguardingEvent")
    serde = EventSerde(InMemoryRegistry())
    framed = serde.encode(event)
    raw_event = {**event, "details": {**event["details"], "-type": "uk.sgb.DomesticAbuseIncident"}}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, raw_event)
    raw = buf.getvalue()

    def raw_encode() -> None:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, raw_event)
        out.getvalue()

    def raw_decode() -> None:
        fastavro.schemaless_reader(io.BytesIO(raw), parsed, None)

    results = {
        "raw encode": rate(raw_encode, args.events, args.repeat),
        "sgb encode": rate(lambda: serde.encode(event), args.events, args.repeat),
        "raw decode": rate(raw_decode, args.events, args.repeat),
        "sgb decode": rate(lambda: serde.decode(framed), args.events, args.repeat),
    }
    print(f"typical event: DOMESTIC_ABUSE_INCIDENT, {len(raw)} bytes Avro, {len(framed)} bytes framed")
    print(f"{'':12} {'events/s':>10}")
    for name, value in results.items():
        print(f"{name:12} {value:>10,.0f}")
    for op in ("encode", "decode"):
        ratio = results[f"sgb {op}"] / results[f"raw {op}"]
        print(f"{op}: sgb at {ratio:.1%} of raw fastavro (overhead {1 - ratio:+.1%}; target within 10%)")


if __name__ == "__main__":
    main()
