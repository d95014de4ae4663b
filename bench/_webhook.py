"""(c) of ``bench/connectors_la.py``: the schools' webhook (`sgb connector serve-webhook`, its own
process) over HTTP, requests/s and p50/p99 latency with N concurrent senders each waiting for its
202, against awaited acks=all produce at the same concurrency in the same run."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _http import Connection, post_request

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.education import synthetic as edu_syn
from connectors.education.concern import Concern, concern_record, map_concern
from connectors.education.tokens import TokenStore
from connectors.runtime.acked import AckedProducer
from schemas.child_keys import child_key
from schemas.topics import ingress_topic

_HERE = Path(__file__).resolve().parent


def free_port() -> int:
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


def webhooks(settings: Settings, args: argparse.Namespace) -> None:
    """(c), after the same with the baseline tree's webhook when given."""
    global SERVER_TREE
    if args.baseline_tree:
        SERVER_TREE = args.baseline_tree.resolve()
        print(f"    baseline tree {SERVER_TREE}:", end=" ")
        webhook(settings, args.requests, args.concurrency, None, args.client)
        SERVER_TREE = _HERE.parent
        print("    this tree:", end=" ")
    webhook(settings, args.requests, args.concurrency, args.profile_webhook, args.client)
