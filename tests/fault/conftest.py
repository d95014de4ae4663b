"""A three-broker KRaft cluster on loopback for the fault tests, separate from the single
broker of ``tests/conftest.py``.

The cluster is started once for this folder (package scope: it stops when the last fault
test is done, before the integration tests start theirs) on six consecutive free ports.
Each test gets its own topic prefix, state directory and consumer groups; a node that an
earlier test left down is started again first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.cluster.free_ports import start_on_free_ports
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.topics import apply
from broker.settings import Settings
from schemas.topics import load_declaration

BROKERS = 3
RESULTS_KEY = pytest.StashKey[list[str]]()


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A running three-node cluster (each node broker and controller, -Xmx512m)."""
    state = tmp_path_factory.mktemp("sgb-cluster")
    kafka = start_on_free_ports(
        lambda port: LocalKafka(
            Settings(kafka_port=port, state_dir=state, kafka_heap="512m"), brokers=BROKERS
        ),
        brokers=BROKERS,
        timeout=150,
    )
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def cluster_settings(cluster: LocalKafka, tmp_path: Path) -> Settings:
    """Per-test settings on the cluster: all nodes up, every declared topic under a fresh prefix."""
    for node in cluster.nodes:
        if node.pid() is None:
            cluster.restart_node(node.node_id)
    settings = Settings(
        bootstrap_servers=cluster.bootstrap,
        state_dir=tmp_path / "state",
        topic_prefix=f"f{uuid.uuid4().hex[:10]}.",
    )
    apply(settings, load_declaration(), timeout=60)
    return settings


@pytest.fixture(scope="session")
def fault_results(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """Where the FAULT lines are written (the pytest temporary folder, never the tree)."""
    pytestconfig.stash.setdefault(RESULTS_KEY, [])
    return tmp_path_factory.mktemp("fault-results") / "results.txt"


@pytest.fixture
def report(fault_results: Path, pytestconfig: pytest.Config):  # type: ignore[no-untyped-def]
    """Print one FAULT line and keep it for the results file and the terminal summary."""

    def _report(line: str) -> None:
        print(line, flush=True)
        with fault_results.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        pytestconfig.stash[RESULTS_KEY].append(line)

    return _report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    lines = config.stash.get(RESULTS_KEY, [])
    if lines:
        terminalreporter.section("fault tests")
        for line in lines:
            terminalreporter.write_line(line)
