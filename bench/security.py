"""Security benchmark: the filter's events/s with the security features off and on, in one run.

Each mode gets its own topic prefix on the same broker and the same synthetic events.
Connectors' signing happens before the clock starts (it is the connectors' cost, not the
filter's); inside the measured window the filter verifies every ingress event and signs
every delivery. The target (issue 9): at most 30% slower with everything on.

    .venv/bin/python bench/security.py [--events 10000] [--rounds 2]

With field encryption on, the connectors' sealing (per-child data keys, AES-GCM) also
happens before the clock; the filter checks that tagged fields arrive sealed and keeps the
tokens as they are, and the hubs' opening is theirs (bench/fieldcrypt.py prices each step).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

# The repository first, so that a tree's bench runs that tree's packages; bench/ last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

from _kafka import bench_kafka

from broker.clients import producer
from broker.cluster.topics import apply
from broker.security.provenance import Provenance, Signer, Verifier
from broker.security.signing_keys import KeyStore
from broker.settings import Settings
from broker.wire.codecs import EventSerde
from broker.wire.registry import registry_for
from consent.filter.service import FilterService
from schemas.child_keys import child_key
from schemas.topics import (
    AUDIT_TOPIC,
    ingress_topic,
    load_declaration,
)
from sgb.simulate.events import Population, Simulator

# (name, settings that turn the mode on). The first is the baseline the others are compared to.
MODES: list[tuple[str, dict[str, Any]]] = [
    ("all off", {}),
    ("signing + verification", {"provenance": True}),
    ("field encryption", {"field_encryption": "on"}),
    ("signing + verification + field encryption", {"provenance": True, "field_encryption": "on"}),
]


def synthetic(count: int, seed: int = 7) -> list[dict[str, Any]]:
    return list(Simulator(Population(2000, seed), seed).events(count))


def produce_signed(settings: Settings, events: list[dict[str, Any]], serde: EventSerde) -> None:
    """Publish the events as their connectors would: sealed per child when field encryption is
    on, signed per agency when provenance is on."""
    from broker.security.ciphers import publisher_cipher

    signers = (
        {a: Provenance(settings, a.lower()) for a in {e["source"]["agency"] for e in events}}
        if settings.provenance
        else {}
    )
    cipher = publisher_cipher(settings)
    prod = producer(settings, **{"linger.ms": 20, "batch.num.messages": 10000})
    for event in events:
        agency = event["source"]["agency"]
        child = child_key(event["child"]) or "unknown"
        if cipher is not None:
            event = cipher.seal(event, child)
        key, value = child.encode(), serde.encode(event)
        topic = settings.topic(ingress_topic(agency))
        headers = signers[agency].sign(topic, key, value) if agency in signers else []
        while True:
            try:
                prod.produce(topic, key=key, value=value, headers=headers)
                break
            except BufferError:
                prod.poll(0.05)
    prod.flush(60)


def audit_count(settings: Settings) -> int:
    """Audit records visible to a read_committed reader (the topic starts empty)."""
    from confluent_kafka import TopicPartition

    from broker.clients import consumer

    cons = consumer(settings, "bench-count")
    name = settings.topic(AUDIT_TOPIC)
    total = sum(
        cons.get_watermark_offsets(TopicPartition(name, p), timeout=10, cached=False)[1]
        for p in cons.list_topics(name, timeout=10).topics[name].partitions
    )
    cons.close()
    return total


def filter_rate(settings: Settings, events: list[dict[str, Any]]) -> tuple[float, dict[str, int]]:
    """Events/s of one filter process over ``events`` (start-up not counted), and its counts."""
    produce_signed(settings, events, EventSerde(registry_for(settings)))
    stop = threading.Event()
    service = FilterService(settings, group_id=f"bench-{uuid.uuid4().hex[:6]}", instance="bench")
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    service.ready.wait(60)
    began = time.perf_counter()
    # Every event is decided for every audience, and its decisions audited in one record.
    target = len(events)
    while audit_count(settings) < target and thread.is_alive():
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    stop.set()
    thread.join(30)
    counts = dict(service.counts)
    if counts.get("dead_lettered"):
        print(f"    warning: {counts['dead_lettered']} event(s) dead-lettered in this mode")
    return len(events) / elapsed, counts


def crypto_costs(settings: Settings, sample: list[bytes], rounds: int = 2000) -> tuple[float, float]:
    """Microseconds to sign and to verify one message, without Kafka."""
    store = KeyStore(settings.state_dir / "keys-microbench")
    signer, topic = Signer(store, "police"), ingress_topic("POLICE")
    values = [sample[i % len(sample)] for i in range(rounds)]
    began = time.perf_counter()
    headers = [signer.headers(topic, b"k", v) for v in values]
    sign_us = (time.perf_counter() - began) / rounds * 1e6
    verifier = Verifier(store)
    began = time.perf_counter()
    for value, h in zip(values, headers, strict=True):
        assert verifier.check(topic, b"k", value, h) is None
    return sign_us, (time.perf_counter() - began) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="Filter events/s with security features off and on")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="Run the modes in turn this many times and keep each mode's best rate "
        "(a shared machine's noise otherwise favours whichever ran first).",
    )
    args = parser.parse_args()

    print(f"generating {args.events} synthetic events of all 14 types ...")
    events = synthetic(args.events)
    with bench_kafka() as base:
        serde = EventSerde(registry_for(base))
        sample = [serde.encode(e) for e in events[:500]]
        best: dict[str, tuple[float, dict[str, int]]] = {}
        for round_ in range(args.rounds):
            for index, (name, update) in enumerate(MODES):
                prefix = f"{base.topic_prefix}{round_}.{index}."
                settings = base.model_copy(update={**update, "topic_prefix": prefix})
                apply(settings, load_declaration())
                rate, counts = filter_rate(settings, events)
                print(f"round {round_ + 1}: the filter, {name}: {rate:,.0f} events/s")
                if rate > best.get(name, (0.0, {}))[0]:
                    best[name] = (rate, counts)
        rates = [(name, *best[name]) for name, _ in MODES]
        sign_us, verify_us = crypto_costs(base, sample)

    baseline = rates[0][1]
    print()
    mean_size = statistics.mean(len(v) for v in sample)
    print(f"events: {args.events:,} of all 14 types, mean {mean_size:.0f} bytes")
    for index, (name, rate, _counts) in enumerate(rates):
        line = f"filter, {name:<42} {rate:>8,.0f} events/s (best of {args.rounds})"
        if index:
            change = (1 - rate / baseline) * 100
            line += f"   {abs(change):.1f}% {'slower' if change >= 0 else 'faster'} than {rates[0][0]}"
        print(line)
    print(
        f"Ed25519 per message, no Kafka: sign {sign_us:.0f} us, verify {verify_us:.0f} us "
        "(the filter verifies once per event and signs once per delivery)"
    )
    print("target: at most 30% slower with everything on")


if __name__ == "__main__":
    main()
