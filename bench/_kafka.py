"""A broker for benchmarks: SGB_BENCH_BOOTSTRAP if set, else a local one started for the run."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from broker.cluster.local_kafka import LocalKafka
from broker.cluster.topics import apply
from broker.settings import Settings
from schemas.topics import load_declaration


def _free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 60000:
            return port


@contextlib.contextmanager
def bench_kafka() -> Iterator[Settings]:
    """Settings for a fresh topic prefix on a broker, with every declared topic created."""
    state = Path(tempfile.mkdtemp(prefix="sgb-bench-"))
    prefix = f"b{uuid.uuid4().hex[:8]}."
    named = os.environ.get("SGB_BENCH_BOOTSTRAP")
    if named:
        settings = Settings(bootstrap_servers=named, state_dir=state, topic_prefix=prefix)
        apply(settings, load_declaration())
        yield settings
        return
    settings = Settings(kafka_port=_free_port(), state_dir=state, kafka_heap="1g")
    broker = LocalKafka(settings)
    broker.start()
    try:
        settings = settings.model_copy(update={"bootstrap_servers": broker.bootstrap, "topic_prefix": prefix})
        apply(settings, load_declaration())
        yield settings
    finally:
        broker.stop()
