"""Hub sinks on real services: a file, SQLite, PostgreSQL (a throwaway cluster this session
starts) and an HTTP receiver on loopback; a subscriber killed with SIGKILL mid-stream and
restarted leaves every event exactly once."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import sgb_env
from factories import domestic_abuse_incident

from broker.clients import producer
from broker.hub.sinks import open_sink
from broker.hub.subscriber import Subscriber
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import delivery_topic

pytestmark = pytest.mark.kafka

# `sgb` with the operator and hub commands registered, whether or not sgb/cli wires them yet.
RUNNER = "import sys\nfrom sgb.cli import main\nsys.exit(main(sys.argv[1:]))\n"
SGB = [sys.executable, "-c", RUNNER]
AUDIENCE, ORG = "MASH", "202"


# -- services ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster in a temp dir on a free loopback port (Debian's binaries)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail("PostgreSQL is not installed: run tools/install-test-deps.sh (package postgresql).")
    bindir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="sgb-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "sgb",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=40"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    try:
        yield f"postgresql://sgb@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server: str) -> str:
    """A fresh database on the session's cluster."""
    import psycopg

    name = f"hub_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


class Receiver:
    """An HTTP receiver on loopback that keeps one body per Idempotency-Key, like a careful hub system."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.fail_first = fail_first
        self.down = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts += 1
                    failing = receiver.down or receiver.posts <= receiver.fail_first
                    if not failing:
                        event = json.loads(body)
                        assert self.headers["Idempotency-Key"] == event["event_id"]
                        receiver.bodies.setdefault(self.headers["Idempotency-Key"], event)
                self.send_response(503 if failing else 201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/inbox"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


# -- deliveries as the filter writes them ------------------------------------------------------
def publish_deliveries(
    settings: Settings,
    count: int,
    *,
    per_transaction: int = 10,
    pause: float = 0.0,
    audience: str = AUDIENCE,
    organisation: str = ORG,
) -> list[str]:
    """Write ``count`` copies to a delivery topic in transactions, with the filter's headers."""
    codecs = Codecs(registry_for(settings))
    prod = producer(settings, transactional_id=f"test-deliver-{uuid.uuid4().hex[:8]}")
    prod.init_transactions(30)
    topic = settings.topic(delivery_topic(audience, organisation))
    ids: list[str] = []
    for start in range(0, count, per_transaction):
        prod.begin_transaction()
        for _ in range(min(per_transaction, count - start)):
            event = domestic_abuse_incident()
            ids.append(event["event_id"])
            prod.produce(
                topic,
                key=event["event_id"].encode(),
                value=codecs.event.encode(event),
                headers=[("sgb.event_id", event["event_id"].encode()), ("sgb.policy_version", b"test")],
            )
        prod.commit_transaction(30)
        if pause:
            time.sleep(pause)
    return ids


def sqlite_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT event_id FROM deliveries")]
        except sqlite3.OperationalError:
            return []


def postgres_ids(dsn: str) -> list[str]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT event_id FROM sgb_deliveries")]
        except psycopg.errors.UndefinedTable:
            return []


def jsonl_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    complete = path.read_text().split("\n")[:-1]  # a last line without its newline is still being written
    return [json.loads(line)["event_id"] for line in complete if line.strip()]


def sink_for(
    kind: str, tmp_path: Path, dsn: Callable[[], str], receiver: Receiver
) -> tuple[str, Callable[[], list[str]]]:
    """The sink spec and a function listing the event ids the sink holds (with repeats, if any)."""
    if kind == "jsonl":
        return f"jsonl:{tmp_path / 'inbox.jsonl'}", lambda: jsonl_ids(tmp_path / "inbox.jsonl")
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'inbox.db'}", lambda: sqlite_ids(tmp_path / "inbox.db")
    if kind == "postgres":
        target = dsn()
        return f"postgres:{target}", lambda: postgres_ids(target)
    return f"webhook:{receiver.url}", lambda: list(receiver.bodies)


KINDS = ("jsonl", "sqlite", "postgres", "webhook")


# -- each sink, in process -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_each_sink_holds_every_event_once_and_a_rerun_adds_nothing(
    kind: str, kafka: Settings, tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver
) -> None:
    ids = publish_deliveries(kafka, 60)
    spec, held = sink_for(kind, tmp_path, lambda: request.getfixturevalue("postgres_dsn"), receiver)
    stop = threading.Event()
    written = Subscriber(kafka, AUDIENCE, ORG).run(open_sink(spec, AUDIENCE, ORG), stop, idle_timeout=3)
    assert written == 60
    assert sorted(held()) == sorted(ids)
    # Replaying from the start into the same sink (another group, so every offset is re-read) adds nothing.
    again = Subscriber(kafka, AUDIENCE, ORG, group_id=f"replay-{uuid.uuid4().hex[:6]}")
    rewritten = again.run(open_sink(spec, AUDIENCE, ORG), stop, idle_timeout=3)
    assert sorted(held()) == sorted(ids)
    if kind != "webhook":  # a webhook cannot know what the receiver already had; its key says
        assert rewritten == 0
    else:
        assert receiver.posts == 120


def test_a_crash_between_the_write_and_the_commit_leaves_no_duplicate(
    kafka: Settings, tmp_path: Path
) -> None:
    """The window kill -9 can hit only by luck, hit on purpose: the batch is durable, its offsets are not."""
    ids = publish_deliveries(kafka, 40, per_transaction=40)

    class Crash(Exception):
        pass

    class DiesAfterWriting:
        kind = "sqlite"

        def __init__(self) -> None:
            self.inner = open_sink(f"sqlite:{tmp_path / 'inbox.db'}", AUDIENCE, ORG)

        def write(self, events: Any) -> int:
            self.inner.write(events)
            raise Crash  # the process "dies" before the subscriber can commit

        def close(self) -> None:
            self.inner.close()

    with pytest.raises(Crash):
        Subscriber(kafka, AUDIENCE, ORG).run(DiesAfterWriting(), threading.Event(), idle_timeout=3)
    first = sqlite_ids(tmp_path / "inbox.db")
    assert first, "the first batch should be in the sink"
    sink = open_sink(f"sqlite:{tmp_path / 'inbox.db'}", AUDIENCE, ORG)
    written = Subscriber(kafka, AUDIENCE, ORG).run(sink, threading.Event(), idle_timeout=3)
    assert written == len(ids) - len(first)  # what the first run wrote was re-read and skipped
    assert sorted(sqlite_ids(tmp_path / "inbox.db")) == sorted(ids)


def test_a_stopped_hub_has_committed_everything_it_wrote(kafka: Settings, tmp_path: Path) -> None:
    """The hub does not wait for each offset commit's answer; stopping still does, so a restart
    of the same group reads nothing again (a fresh sink, which would skip nothing, says so)."""
    publish_deliveries(kafka, 30)
    first = open_sink(f"jsonl:{tmp_path / 'first.jsonl'}", AUDIENCE, ORG)
    assert Subscriber(kafka, AUDIENCE, ORG).run(first, threading.Event(), idle_timeout=3) == 30
    fresh = open_sink(f"jsonl:{tmp_path / 'fresh.jsonl'}", AUDIENCE, ORG)
    assert Subscriber(kafka, AUDIENCE, ORG).run(fresh, threading.Event(), idle_timeout=3) == 0


def test_webhook_retries_and_never_commits_past_a_failed_post(kafka: Settings, group_id: str) -> None:
    ids = publish_deliveries(kafka, 12)
    flaky = Receiver(fail_first=3)  # the first three posts answer 503
    try:
        sink = open_sink(f"webhook:{flaky.url}", AUDIENCE, ORG)
        written = Subscriber(kafka, AUDIENCE, ORG, group_id).run(sink, threading.Event(), idle_timeout=3)
        assert written == 12 and sorted(flaky.bodies) == sorted(ids)
        assert flaky.posts == 15
    finally:
        flaky.close()
    more = publish_deliveries(kafka, 5)
    down = Receiver()
    down.down = True
    try:
        stop = threading.Event()
        threading.Timer(6, stop.set).start()
        Subscriber(kafka, AUDIENCE, ORG, group_id).run(open_sink(f"webhook:{down.url}", AUDIENCE, ORG), stop)
        assert down.posts >= 2 and not down.bodies
    finally:
        down.close()
    # Nothing was acknowledged past the failed posts: a healthy receiver gets all five.
    healthy = Receiver()
    try:
        Subscriber(kafka, AUDIENCE, ORG, group_id).run(
            open_sink(f"webhook:{healthy.url}", AUDIENCE, ORG), threading.Event(), idle_timeout=3
        )
        assert sorted(healthy.bodies) == sorted(more)
    finally:
        healthy.close()


def test_replay_since_a_time_reads_only_what_came_after(kafka: Settings, tmp_path: Path) -> None:
    publish_deliveries(kafka, 10)
    time.sleep(1.5)
    from datetime import UTC, datetime

    since = datetime.now(UTC)
    later = publish_deliveries(kafka, 7)
    sink = open_sink(f"jsonl:{tmp_path / 'since.jsonl'}", AUDIENCE, ORG)
    Subscriber(kafka, AUDIENCE, ORG, group_id=f"since-{uuid.uuid4().hex[:6]}").run(
        sink, threading.Event(), since=since, idle_timeout=3
    )
    assert sorted(jsonl_ids(tmp_path / "since.jsonl")) == sorted(later)


def test_a_store_of_another_hub_is_refused(kafka: Settings, tmp_path: Path, postgres_dsn: str) -> None:
    from broker.hub.sinks import SinkError

    open_sink(f"sqlite:{tmp_path / 'a.db'}", "MASH", "202").close()
    with pytest.raises(SinkError, match="already holds deliveries for MASH 202"):
        open_sink(f"sqlite:{tmp_path / 'a.db'}", "SCHOOL_DSL", "100000")
    open_sink(f"postgres:{postgres_dsn}", "MASH", "202").close()
    with pytest.raises(SinkError, match="already holds deliveries for MASH 202"):
        open_sink(f"postgres:{postgres_dsn}", "GP", "F83004")


# -- kill -9 mid-stream, restart -------------------------------------------------------------------
def _start(spec: str, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*SGB, "hub", "subscribe", AUDIENCE.lower(), ORG, "--sink", spec, *extra],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_mid_stream_and_restart_leaves_each_event_exactly_once(
    kind: str, kafka: Settings, tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver
) -> None:
    total = 600
    spec, held = sink_for(kind, tmp_path, lambda: request.getfixturevalue("postgres_dsn"), receiver)
    env = sgb_env(kafka)
    published: list[str] = []
    writer = threading.Thread(
        target=lambda: published.extend(publish_deliveries(kafka, total, per_transaction=10, pause=0.12)),
        daemon=True,
    )
    log = tmp_path / "subscriber.log"
    proc = _start(spec, env, log)
    try:
        writer.start()
        for threshold in (100, 250):  # kill twice, each time with events still arriving
            _wait_for(lambda t=threshold: len(held()) >= t, 90, f"{threshold} events in the {kind} sink")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert writer.is_alive(), "the stream should still be flowing when the subscriber is killed"
            proc = _start(spec, env, log)
        writer.join(120)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        final = _start(spec, env, log, "--idle-exit", "4")
        assert final.wait(120) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    ids = held()
    assert len(published) == total
    assert len(ids) == len(set(ids)) == total, f"{len(ids)} rows, {len(set(ids))} distinct, {total} expected"
    assert set(ids) == set(published)


def test_subscriber_serves_metrics_and_health(kafka: Settings, tmp_path: Path) -> None:
    publish_deliveries(kafka, 5)
    port = _free_port()
    proc = subprocess.Popen(
        [
            *SGB,
            "hub",
            "subscribe",
            "mash",
            ORG,
            "--sink",
            f"sqlite:{tmp_path / 'm.db'}",
            "--metrics-port",
            str(port),
        ],
        env=sgb_env(kafka),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: len(sqlite_ids(tmp_path / "m.db")) == 5, 60, "five events")

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        _wait_for(lambda: get("/readyz")[0] == 200, 30, "readiness")
        assert get("/livez")[0] == 200
        status, text = get("/metrics")
        assert status == 200
        assert 'sgb_hub_events_written_total{audience="MASH",organisation="202",sink="sqlite"} 5.0' in text
        assert "sgb_hub_lag_messages" in text and "sgb_hub_sink_write_seconds_bucket" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
