"""Schools' and local authorities' connectors, all in one run on one broker, each against raw
produce of the same pre-encoded records in the same run:

  (a) CIN census XML: children/s and events/s through the connector (stream, map, snapshot
      diff, transactions), against raw transactional produce of its events;
  (b) SSDA903 episodes CSV: rows/s through the connector, against raw produce of its events;
  (c) the schools' webhook (`sgb connector serve-webhook`, its own process) over HTTP: requests/s
      and p50/p99 latency with N concurrent senders each waiting for its 202, against awaited
      acks=all produce at the same concurrency.

    .venv/bin/python bench/connectors_la.py [--children 20000] [--episodes 40000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# bench/connectors.py would shadow the connectors package: the repository first, bench/ last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

import httpx
from _http import Connection, post_request
from _kafka import bench_kafka

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.assembly import snapshot_parts
from connectors.education import synthetic as edu_syn
from connectors.education.tokens import TokenStore
from connectors.exceptions import MappingError, NoEvent
from connectors.local_authority import CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as la_syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS
from connectors.runtime.acked import AckedProducer
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.delivery import TransactionalDelivery
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.progress import Progress
from connectors.runtime.readers import FileRef
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery
from schemas.child_keys import child_key
from schemas.topics import ingress_topic


def encoded(settings: Settings, reader: Any, mapper: Any, path: Path) -> list[tuple[bytes, bytes]]:
    """The file's events, encoded, as the raw baseline sends them."""
    codecs = Codecs(registry_for(settings))
    out = []
    for record in reader.records(FileRef(path, "raw", path.name, "raw")):
        try:
            event = mapper(record)
        except (NoEvent, MappingError):
            continue
        out.append((str(child_key(event["child"])).encode(), codecs.event.encode(event)))
    return out


def raw_produce(settings: Settings, values: list[tuple[bytes, bytes]], batch: int) -> float:
    """Seconds to produce ``values`` in transactions of ``batch``, acks=all."""
    topic = settings.topic(ingress_topic("LOCAL_AUTHORITY"))
    prod = producer(
        settings,
        transactional_id=f"bench-raw-{time.time_ns()}",
        **{"linger.ms": 20, "batch.num.messages": 10000},
    )
    prod.init_transactions(30)
    began = time.perf_counter()
    for start in range(0, len(values), batch):
        prod.begin_transaction()
        for key, value in values[start : start + batch]:
            while True:
                try:
                    prod.produce(topic, value, key)
                    break
                except BufferError:
                    prod.poll(0.05)
        prod.commit_transaction(60)
    return time.perf_counter() - began


def connector(settings: Settings, name: str, reader: Any, mapper: Any, path: Path) -> tuple[float, Any]:
    """Seconds for the LA connector (snapshot diffing included) over one file, and its summary."""
    store = CheckpointStore(settings.state_dir / "connectors" / name)
    store.lock()
    snapshot = SnapshotStore(store.root)
    delivery = SnapshotDelivery(TransactionalDelivery(settings, "local_authority", name), snapshot)
    reader, mapper = snapshot_parts("local_authority", reader, mapper, snapshot)  # as a run has them
    try:
        runner = FileConnector(
            name,
            reader,
            mapper,
            delivery,
            store,
            batch_size=5000,
            progress=Progress(Counter(), interactive=False, interval_s=3600),
        )
        began = time.perf_counter()
        summary = runner.run_batch(path, threading.Event())
        return time.perf_counter() - began, summary
    finally:
        delivery.close()
        store.unlock()


def episodes(n: int, rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    heads, rows = [], []
    for c in range(n // 2):
        child = f"L{c:06d}"
        heads.append({"CHILD": child, "SEX": "1", "DOB": "01/02/2012", "UPN": "UN2"})
        start = 1 + rng.randrange(27)
        rows.append(
            {
                "CHILD": child,
                "DECOM": f"{start:02d}/04/2023",
                "RNE": "S",
                "LS": "C2",
                "CIN": "N1",
                "PLACE": "U1",
                "DEC": f"{start:02d}/06/2023",
                "REC": "X1",
            }
        )
        rows.append(
            {
                "CHILD": child,
                "DECOM": f"{start:02d}/06/2023",
                "RNE": "P",
                "LS": "C2",
                "CIN": "N1",
                "PLACE": "U3",
                "DEC": "15/01/2024" if c % 3 == 0 else "",
                "REC": "E11" if c % 3 == 0 else "",
            }
        )
    return heads, rows


def report(label: str, units: str, count: int, seconds: float, raw_events: int, raw_s: float) -> None:
    print(
        f"{label}: {count / seconds:>9,.0f} {units}/s ({raw_events / seconds:,.0f} events/s); "
        f"raw transactional produce of the same events: {raw_events / raw_s:,.0f} events/s "
        f"(connector at {100 * raw_s / seconds:.0f}% of raw)"
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def timed(calls: list[Any], concurrency: int) -> tuple[float, list[float]]:
    """Seconds for all calls with ``concurrency`` workers, and each call's latency."""
    latencies: list[float] = []
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            call = queue.pop()
            began = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


async def warm(port: int, token: str, rng: random.Random) -> None:
    """A few requests first, so connections and metadata are not in the measured latency."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for i in range(20):
            await client.post("/v1/concerns", json=edu_syn.concern_payload(rng, 10**6 + i))


#: The source tree the webhook process runs from.
SERVER_TREE = _HERE.parent
#: How the webhook process runs `sgb` (after the interpreter).
SERVER = ["-m", "sgb.cli"]
#: The webhook's command under cProfile (``--profile-webhook``).
PROFILED = (
    "import cProfile, sys\nfrom sgb.cli import main\nprofile = cProfile.Profile()\nprofile.enable()\n"
    "try:\n    main(sys.argv[1:])\nfinally:\n    profile.disable()\n    profile.dump_stats({path!r})\n"
)


def webhook(
    settings: Settings, requests: int, concurrency: int, profile: str | None = None, client_kind: str = "lean"
) -> None:
    tokens = TokenStore(settings.state_dir / "tokens")
    token = tokens.add("100000")
    codecs = Codecs(registry_for(settings))
    _ = codecs.event
    # The webhook as deployed: `sgb connector serve-webhook` in its own process (the client here
    # would otherwise share one interpreter lock with the server).
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
            "SGB_TOPIC_PREFIX": settings.topic_prefix,
            "SGB_STATE_DIR": str(settings.state_dir),
            "SGB_LOG_FORMAT": "json",
            "SGB_LOG_LEVEL": "WARNING",
        }
    )
    run = (
        ["-c", PROFILED.format(path=profile)]  # its statistics written however it stops
        if profile
        else SERVER
    )
    server = subprocess.Popen(
        [
            sys.executable,
            *run,
            "connector",
            "serve-webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tokens",
            str(settings.state_dir / "tokens"),
        ],
        env=env,
        cwd=SERVER_TREE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    rng = random.Random(5)
    bodies = [edu_syn.concern_payload(rng, i) for i in range(requests)]

    async def over_http() -> tuple[float, list[float]]:
        if client_kind == "httpx":  # what a school's Python client might be: costly per request
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                limits=limits,
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            ) as client:

                async def post(body: dict[str, Any]) -> None:
                    answer = await client.post("/v1/concerns", json=body)
                    assert answer.status_code == 202, answer.text

                return await timed([lambda b=b: post(b) for b in bodies], concurrency)
        # One keep-alive connection per sender, requests made beforehand: the server is measured.
        free = [await Connection.open(port) for _ in range(concurrency)]
        requests_ = [post_request("/v1/concerns", token, b) for b in bodies]

        async def send(request: bytes) -> None:
            conn = free.pop()
            try:
                status, answer = await conn.send(request)
            finally:
                free.append(conn)
            assert status == 202, answer

        try:
            return await timed([lambda r=r: send(r) for r in requests_], concurrency)
        finally:
            for conn in free:
                conn.close()

    asyncio.run(warm(port, token, rng))
    cpu = time.process_time()
    try:
        seconds, lat = asyncio.run(over_http())
        cpu = time.process_time() - cpu
    finally:
        # uvicorn raises SIGTERM again once stopped (killing the process); SIGINT lets a profile be written
        server.send_signal(signal.SIGINT if profile else signal.SIGTERM)
        server.wait(30)
    values = []
    from connectors.education.concern import Concern, concern_record, map_concern

    for b in bodies:
        event = map_concern(concern_record("raw", "100000", Concern.model_validate(b), b"{}"), "100000")
        values.append((str(child_key(event["child"])).encode(), codecs.event.encode(event)))

    async def raw() -> tuple[float, list[float]]:
        acked = AckedProducer(settings, asyncio.get_running_loop(), 10)
        topic = settings.topic(ingress_topic("EDUCATION"))
        try:
            await asyncio.gather(*(acked.send(topic, v, k) for k, v in values[:50]))  # warm up
            return await timed([lambda k=k, v=v: acked.send(topic, v, k) for k, v in values], concurrency)
        finally:
            acked.close()

    raw_s, raw_lat = asyncio.run(raw())

    def pct(xs: list[float], q: int) -> float:
        return 1000 * statistics.quantiles(xs, n=100)[q - 1]

    print(
        f"(c) webhook, {concurrency} senders ({client_kind} client, {1000 * cpu / requests:.2f} ms of "
        f"client CPU a request): {requests / seconds:>9,.0f} requests/s, "
        f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms; awaited acks=all produce at the same "
        f"concurrency: {requests / raw_s:,.0f} events/s, p50 {pct(raw_lat, 50):.1f} ms, "
        f"p99 {pct(raw_lat, 99):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=20_000, help="children in the CIN census return")
    parser.add_argument("--episodes", type=int, default=40_000, help="rows in the SSDA903 episodes table")
    parser.add_argument("--requests", type=int, default=3_000, help="webhook requests")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent webhook senders")
    parser.add_argument("--no-webhook", action="store_true", help="skip (c), the schools' webhook")
    parser.add_argument("--webhook-only", action="store_true", help="only (c), the schools' webhook")
    parser.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="(c)'s senders: one keep-alive connection each writing ready-made requests (measures the "
        "server), or httpx (measures httpx too)",
    )
    parser.add_argument(
        "--profile-webhook", metavar="FILE", help="run the webhook under cProfile, its statistics to FILE"
    )
    args = parser.parse_args()
    with bench_kafka() as settings:
        if args.webhook_only:
            webhook(settings, args.requests, args.concurrency, args.profile_webhook, args.client)
            return
        work = settings.state_dir / "files"
        work.mkdir()
        cin = la_syn.write_cin(work / "cin.xml", la_syn.cin_children(args.children, random.Random(1)))
        mapper = LaMapper(LaProfile(), "cin-census")
        values = encoded(settings, CinCensusReader(), mapper, cin)
        raw_s = raw_produce(settings, values, 5000)
        seconds, summary = connector(settings, "bench-cin", CinCensusReader(), mapper, cin)
        assert summary.counts["published"] == len(values), summary.line()
        report(
            f"(a) CIN census, {args.children:,} children",
            "children",
            args.children,
            seconds,
            len(values),
            raw_s,
        )
        restated = la_syn.write_cin(
            work / "cin-restated.xml", la_syn.cin_children(args.children, random.Random(1))
        )
        with restated.open("a", encoding="utf-8") as fh:
            fh.write("<!-- next month's return: the same facts, so a new file identity -->\n")
        again, summary = connector(settings, "bench-cin", CinCensusReader(), mapper, restated)
        print(
            f"    next return, nothing changed: {args.children / again:,.0f} children/s, "
            f"{summary.counts['published']} published, {summary.counts['no_event']} unchanged"
        )

        folder = work / "903"
        folder.mkdir()
        heads, rows = episodes(args.episodes, random.Random(2))
        la_syn.write_csv(folder / "header.csv", HEADER_COLUMNS, heads)
        table = la_syn.write_csv(folder / "episodes.csv", EPISODE_COLUMNS, rows)
        mapper = LaMapper(LaProfile(la_code="202"), "ssda903")
        values = encoded(settings, Ssda903Reader("202"), mapper, table)
        raw_s = raw_produce(settings, values, 5000)
        seconds, summary = connector(settings, "bench-903", Ssda903Reader("202"), mapper, table)
        assert summary.counts["published"] == len(values), summary.line()
        report(f"(b) SSDA903, {len(rows):,} episode rows", "rows", len(rows), seconds, len(values), raw_s)

        dirty_children = list(la_syn.cin_children(args.children, random.Random(3)))
        for kid in dirty_children[::10]:  # one child in ten with a wrong UPN check letter
            kid.upn = ("B" if kid.upn[0] != "B" else "C") + kid.upn[1:]
        dirty = la_syn.write_cin(work / "cin-dirty.xml", dirty_children)
        mapper = LaMapper(LaProfile(), "cin-census")
        values = encoded(settings, CinCensusReader(), mapper, dirty)
        raw_s = raw_produce(settings, values, 5000)
        seconds, summary = connector(settings, "bench-cin-dirty", CinCensusReader(), mapper, dirty)
        assert summary.counts["published"] == len(values), summary.line()
        report(
            f"(a') CIN census, {args.children:,} children, 1 in 10 with a bad UPN (withheld, reported)",
            "children",
            args.children,
            seconds,
            len(values),
            raw_s,
        )
        print(f"    {summary.counts['withheld']} events published with a data-quality finding")

        if not args.no_webhook:
            webhook(settings, args.requests, args.concurrency, args.profile_webhook, args.client)


if __name__ == "__main__":
    main()
