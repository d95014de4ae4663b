"""Hub benchmark, all in one run on one broker: delivered events/s into each sink, against a bare
``read_committed`` consumer reading the same topic (no decode, no sink, no commit) as the baseline.

  bare consumer   the ceiling: librdkafka handing over messages
  verify only     the subscriber's decode and verification, committing, into a sink that does nothing
  jsonl           appended and fsynced per batch
  sqlite          one transaction per batch, synchronous=FULL
  postgres        one transaction per batch, on a throwaway local cluster (skipped without PostgreSQL)
  webhook         one POST per event to a receiver on loopback in another process

    .venv/bin/python bench/hub.py [--events 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# The repository first, so that a tree's bench runs that tree's packages; bench/ for _kafka.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from _kafka import bench_kafka

from broker.clients import consumer, producer
from broker.hub.delivered import HubEvent
from broker.hub.sinks import Sink, open_sink
from broker.hub.subscriber import Subscriber
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import delivery_topic
from sgb.simulate.events import Population, Simulator

AUDIENCE, ORG = "MASH", "202"
RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def publish(settings: Settings, count: int) -> None:
    """``count`` synthetic copies on the MASH's delivery topic, in transactions of 500 like the filter's."""
    codecs = Codecs(registry_for(settings))
    events = Simulator(Population(500, 7), 7).events(count)
    prod = producer(settings, transactional_id=f"bench-{uuid.uuid4().hex[:8]}", **{"linger.ms": 20})
    prod.init_transactions(30)
    topic = settings.topic(delivery_topic(AUDIENCE, ORG))
    prod.begin_transaction()
    for n, event in enumerate(events, 1):
        headers = [("sgb.event_id", event["event_id"].encode()), ("sgb.policy_version", b"bench")]
        while True:
            try:
                prod.produce(
                    topic, key=event["event_id"].encode(), value=codecs.event.encode(event), headers=headers
                )
                break
            except BufferError:
                prod.poll(0.1)
        if n % 500 == 0:
            prod.commit_transaction(60)
            prod.begin_transaction()
    prod.commit_transaction(60)


def bare_consumer(settings: Settings, count: int) -> float:
    """Seconds from the first message to the ``count``-th, reading with no decode and no commit."""
    cons = consumer(settings, f"bench-bare-{uuid.uuid4().hex[:8]}")
    cons.subscribe([settings.topic(delivery_topic(AUDIENCE, ORG))])
    seen, first = 0, 0.0
    try:
        while seen < count:
            batch = [m for m in cons.consume(500, timeout=1.0) if m.error() is None]
            if batch and not seen:
                first = time.perf_counter()
            seen += len(batch)
        return time.perf_counter() - first
    finally:
        cons.close()


class Timed:
    """A sink wrapper that notes when the first batch arrived (group join and start-up are not measured)."""

    def __init__(self, inner: Sink) -> None:
        self.inner, self.kind, self.first = inner, inner.kind, 0.0

    def write(self, events: Sequence[HubEvent]) -> int:
        if not self.first:
            self.first = time.perf_counter()
        return self.inner.write(events)

    def close(self) -> None:
        self.inner.close()


class Nothing:
    kind = "none"

    def write(self, events: Sequence[HubEvent]) -> int:
        return len(events)

    def close(self) -> None:
        pass


def through(settings: Settings, sink: Sink, count: int) -> float:
    """Seconds the subscriber takes from its first batch until ``count`` events are in the sink."""
    timed = Timed(sink)
    subscriber = Subscriber(settings, AUDIENCE, ORG, group_id=f"bench-{uuid.uuid4().hex[:8]}")
    written = subscriber.run(timed, threading.Event(), max_events=count, idle_timeout=30)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - timed.first
    assert written == count, f"{timed.kind}: {written} of {count} written"
    return elapsed


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL cluster (None when PostgreSQL is not installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        yield None
        return
    bindir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="sgb-bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = base / "data"
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "sgb", "--auth=trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://sgb@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{proc.stdout.readline().strip()}/inbox"
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    n = args.events
    rows: list[tuple[str, float]] = []
    tmp = Path(tempfile.mkdtemp(prefix="sgb-bench-hub-"))
    with bench_kafka() as settings, postgres() as dsn, receiver() as url:
        print(f"Publishing {n} deliveries to {delivery_topic(AUDIENCE, ORG)} ...", flush=True)
        publish(settings, n)
        rows.append(("bare consumer", bare_consumer(settings, n)))
        sinks: list[tuple[str, Any]] = [
            ("verify only", lambda: Nothing()),
            ("jsonl", lambda: open_sink(f"jsonl:{tmp / 'inbox.jsonl'}", AUDIENCE, ORG)),
            ("sqlite", lambda: open_sink(f"sqlite:{tmp / 'inbox.db'}", AUDIENCE, ORG)),
            ("postgres", (lambda: open_sink(f"postgres:{dsn}", AUDIENCE, ORG)) if dsn else None),
            ("webhook", lambda: open_sink(f"webhook:{url}", AUDIENCE, ORG)),
        ]
        for name, make in sinks:
            if make is None:
                print(f"  {name}: skipped (PostgreSQL is not installed; run tools/install-test-deps.sh)")
                continue
            print(f"  {name} ...", flush=True)
            rows.append((name, through(settings, make(), n)))
    shutil.rmtree(tmp, ignore_errors=True)
    baseline = n / rows[0][1]
    print(f"\nHub throughput, {n} deliveries (synthetic mix, read_committed, batches of up to 500):")
    print(f"  {'sink':<14} {'seconds':>8} {'events/s':>10} {'vs bare consumer':>17}")
    for name, seconds in rows:
        rate = n / seconds
        print(f"  {name:<14} {seconds:>8.2f} {rate:>10,.0f} {rate / baseline:>16.1%}")


if __name__ == "__main__":
    main()
