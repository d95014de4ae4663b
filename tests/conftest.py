"""Shared fixtures: one real Apache Kafka broker per test session, isolated names per test.

A broker named by ``SGB_TEST_BOOTSTRAP`` is reused; otherwise the session starts one
from the project's own jars on a free loopback port and stops it at the end. Each test
that touches Kafka gets its own topic prefix (so its own copy of every declared topic)
and its own consumer group names.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.cluster.free_ports import start_on_free_ports
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.topics import apply
from broker.settings import Settings
from schemas.topics import load_declaration

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kafka_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at the session's real broker."""
    named = os.environ.get("SGB_TEST_BOOTSTRAP")
    state = tmp_path_factory.mktemp("sgb-state")
    if named:
        yield Settings(bootstrap_servers=named, state_dir=state)
        return
    broker = start_on_free_ports(
        lambda port: LocalKafka(Settings(kafka_port=port, state_dir=state, kafka_heap="768m"))
    )
    try:
        yield broker.settings.model_copy(update={"bootstrap_servers": broker.bootstrap})
    finally:
        broker.stop()


@pytest.fixture
def kafka(kafka_session: Settings, tmp_path: Path) -> Settings:
    """Per-test settings: a unique topic prefix with every declared topic created, own state dir."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = kafka_session.model_copy(update={"topic_prefix": prefix, "state_dir": tmp_path / "state"})
    apply(settings, load_declaration())
    return settings


@pytest.fixture
def group_id() -> str:
    """A consumer group name unique to the test."""
    return f"test-{uuid.uuid4().hex[:10]}"


class RunningFilter:
    """A filter service running in a background thread for one test."""

    def __init__(self, settings: Settings, **options: object) -> None:
        import threading

        from consent.filter.service import FilterService

        self.service = FilterService(settings, **options)  # type: ignore[arg-type]
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run(self.stop)
        except BaseException as exc:
            self.error = exc
            self.service.ready.set()

    def __enter__(self) -> RunningFilter:
        self.thread.start()
        assert self.service.ready.wait(60), "filter did not start"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        if self.error:
            raise self.error


@pytest.fixture
def running_filter(kafka: Settings, group_id: str) -> Iterator[RunningFilter]:
    """The filter with the baseline policy, consuming this test's ingress topics."""
    with RunningFilter(kafka, group_id=group_id, instance="test") as running:
        yield running


def read_topic(settings: Settings, logical: str, *, expect: int, timeout: float = 30.0) -> list:  # type: ignore[type-arg]
    """Read ``expect`` messages (read_committed) from a logical topic, or what came within ``timeout``."""
    import time

    from broker.clients import consumer

    cons = consumer(settings, f"reader-{uuid.uuid4().hex[:8]}")
    cons.subscribe([settings.topic(logical)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for msg in cons.consume(100, timeout=0.5):
                if not msg.error():
                    out.append(msg)
    finally:
        cons.close()
    return out


def sgb_env(settings: Settings) -> dict[str, str]:
    """Environment for running the ``sgb`` command against this test's topics."""
    env = dict(os.environ)
    env.update(
        {
            "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
            "SGB_TOPIC_PREFIX": settings.topic_prefix,
            "SGB_STATE_DIR": str(settings.state_dir),
            "SGB_LOG_FORMAT": "json",
        }
    )
    return env
