"""A broker for benchmarks: SGB_BENCH_BOOTSTRAP if set, else a local one started for the run."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from broker.cluster.free_ports import start_on_free_ports
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.topics import apply
from broker.settings import Settings
from schemas.topics import load_declaration


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
    broker = start_on_free_ports(
        lambda port: LocalKafka(Settings(kafka_port=port, state_dir=state, kafka_heap="1g"))
    )
    try:
        settings = broker.settings.model_copy(
            update={"bootstrap_servers": broker.bootstrap, "topic_prefix": prefix}
        )
        apply(settings, load_declaration())
        yield settings
    finally:
        broker.stop()
