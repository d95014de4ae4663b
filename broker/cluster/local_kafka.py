"""The local Apache Kafka runtime: real broker jars from Maven Central, started without Docker.

``sgb kafka start`` runs one combined broker+controller (KRaft, no ZooKeeper) on loopback;
``sgb kafka start --brokers 3`` runs three of them as one cluster (node ids 1..3, every
node a voter of the controller quorum). Their jars are resolved by ``deploy/kafka/pom.xml``
into a cache shared by every checkout. A single node keeps its configuration, data, pid and
logs in ``<state_dir>/kafka``; the nodes of a cluster each in ``<state_dir>/kafka/node-N``.

Ports run upward from ``SGB_KAFKA_PORT``: node N listens for clients on ``port + 2(N-1)``
and for the controller quorum on the port after it, so a single node uses the same two
ports it always did.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.cluster.acls import ADMIN_PRINCIPAL
from broker.cluster.kafka_jars import classpath, kafka_version, require
from broker.cluster.nodes import KafkaNode, answers, port_open
from broker.cluster.security import MODES, BrokerSecurity, client_settings_file
from broker.exceptions import KafkaRuntimeError, PortTaken
from broker.logs import get_logger
from broker.settings import Settings

log = get_logger("broker.kafka")

START_TIMEOUT_S = 90.0
MAX_BROKERS = 5
LAYOUT_FILE = "cluster.json"


@dataclass(frozen=True)
class NodeStatus:
    """One node of the local cluster, as ``sgb kafka status`` shows it."""

    node_id: int
    running: bool
    answering: bool
    pid: int | None
    bootstrap: str
    log_file: Path


@dataclass(frozen=True)
class KafkaStatus:
    """What ``sgb kafka status`` reports: the cluster as a whole, then node by node."""

    running: bool
    answering: bool
    pid: int | None
    bootstrap: str
    version: str
    log_file: Path
    nodes: tuple[NodeStatus, ...] = ()

    @property
    def degraded(self) -> bool:
        """Some nodes run and some do not."""
        return self.running and not all(node.running for node in self.nodes)


class LocalKafka:
    """The local KRaft cluster: one node by default, or ``brokers`` nodes on loopback.

    Args:
        settings: where state lives, which ports to use, each node's heap.
        brokers: how many nodes; ``None`` means the layout this state directory last
            started (one node if it never started a cluster).
        security: ``plaintext``, ``sasl_ssl`` or ``mtls`` (see broker/cluster/security.py);
            ``None`` means ``SGB_KAFKA_SECURITY``, else what this state directory last ran.
    """

    def __init__(self, settings: Settings, brokers: int | None = None, security: str | None = None) -> None:
        self.settings = settings
        self.home = settings.kafka_dir
        recorded = self._recorded_brokers()
        self.brokers = recorded if brokers is None else brokers
        self.security_mode = security or settings.kafka_security or self._recorded("security", "plaintext")
        if self.security_mode not in MODES:
            msg = f"Kafka security {self.security_mode!r} is not one of {', '.join(MODES)}."
            raise KafkaRuntimeError(msg)
        if not 1 <= self.brokers <= MAX_BROKERS:
            msg = f"A local cluster has 1 to {MAX_BROKERS} brokers, not {self.brokers}."
            raise KafkaRuntimeError(msg)
        if self.brokers > 1 and settings.kafka_controller_port is not None:
            msg = (
                "SGB_KAFKA_CONTROLLER_PORT applies to a single broker only; a cluster's nodes use the "
                "ports from SGB_KAFKA_PORT upward (client port, then controller port, per node)."
            )
            raise KafkaRuntimeError(msg)
        self.port = settings.kafka_port
        if self.port + 2 * self.brokers - 1 > 65535:
            msg = f"SGB_KAFKA_PORT {self.port} leaves no room for {self.brokers} nodes' ports below 65536."
            raise KafkaRuntimeError(msg)
        self.controller_port = settings.kafka_controller_port or self.port + 1
        ports = [(self.port + 2 * i, self.port + 2 * i + 1) for i in range(self.brokers)]
        if self.brokers == 1:
            ports = [(self.port, self.controller_port)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(ports))
        self.nodes = tuple(
            KafkaNode(
                settings,
                i + 1,
                self.home if self.brokers == 1 else self.home / f"node-{i + 1}",
                port,
                controller,
                voters,
                self.brokers,
            )
            for i, (port, controller) in enumerate(ports)
        )
        self.bootstrap = ",".join(node.bootstrap for node in self.nodes)
        self.client_settings = settings
        self.security: BrokerSecurity | None = None
        if self.security_mode != "plaintext":
            self.security = BrokerSecurity(settings, self.home, self.security_mode)  # type: ignore[arg-type]
            for node in self.nodes:
                node.security = self.security
            self._use_admin()
        # Node 1's paths, as the single-broker runtime always had them.
        self.data_dir = self.nodes[0].data_dir
        self.log_dir = self.nodes[0].log_dir
        self.pid_file = self.nodes[0].pid_file

    def _recorded_brokers(self) -> int:
        try:
            return int(self._recorded("brokers", 1))
        except (ValueError, TypeError):
            return 1

    def _recorded(self, key: str, default: Any) -> Any:
        try:
            return json.loads((self.home / LAYOUT_FILE).read_text()).get(key, default)
        except (FileNotFoundError, ValueError, AttributeError):
            return default

    def _use_admin(self) -> None:
        """Secured: every node's own checks (is it answering?) connect as the admin, once the
        admin's credentials exist."""
        if self.security is None or not self.security.prepared():
            return
        admin = self.security.admin_settings(self.settings, self.bootstrap)
        self.client_settings = admin
        for node in self.nodes:
            node.settings = admin

    @property
    def admin_settings_file(self) -> Path | None:
        """The admin's client settings file of a secured cluster (None for PLAINTEXT)."""
        if self.security is None:
            return None
        return client_settings_file(self.settings, ADMIN_PRINCIPAL)

    def node(self, node_id: int) -> KafkaNode:
        """The node with this id (1..N)."""
        if not 1 <= node_id <= len(self.nodes):
            msg = f"The local cluster has nodes 1 to {len(self.nodes)}, not {node_id}."
            raise KafkaRuntimeError(msg)
        return self.nodes[node_id - 1]

    # -- state ---------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of node 1 if it is alive, else None (see :meth:`pids` for every node)."""
        return self.nodes[0].pid()

    def pids(self) -> dict[int, int | None]:
        """Each node's pid, None for a node that is not running."""
        return {node.node_id: node.pid() for node in self.nodes}

    def answering(self, timeout: float = 2.0) -> bool:
        """True when the cluster answers a metadata request listing every one of its brokers."""
        return answers(self.client_settings, self.bootstrap, timeout) >= self.brokers

    def status(self) -> KafkaStatus:
        """The cluster's state as ``sgb kafka status`` shows it."""
        nodes = []
        for node in self.nodes:
            pid = node.pid()
            nodes.append(
                NodeStatus(
                    node.node_id,
                    pid is not None,
                    pid is not None and node.answering(),
                    pid,
                    node.bootstrap,
                    node.log_dir / "server.log",
                )
            )
        running = any(n.running for n in nodes)
        return KafkaStatus(
            running=running,
            answering=running and self.answering(),
            pid=nodes[0].pid,
            bootstrap=self.bootstrap,
            version=kafka_version(),
            log_file=self.log_dir / "server.log",
            nodes=tuple(nodes),
        )

    # -- start ---------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Start every node that is not running and wait until the cluster answers with all of
        its brokers. Returns False if every node was already running."""
        self._refuse_other_layout()
        self._refuse_other_security()
        stopped = [node for node in self.nodes if node.pid() is None]
        if not stopped:
            self._wait_answering(timeout)
            return False
        java = require("java", "Java")
        cp = classpath(self.settings)
        for node in stopped:
            for port in (node.port, node.controller_port):
                if port_open(port):
                    msg = (
                        f"Port {port} on 127.0.0.1 is already in use by another process; "
                        "stop it or choose another port with SGB_KAFKA_PORT."
                    )
                    raise PortTaken(msg)
        self.home.mkdir(parents=True, exist_ok=True)
        if self.security is not None:
            self.security.prepare(self.bootstrap)
            self._use_admin()
        layout = {"brokers": self.brokers, "security": self.security_mode}
        (self.home / LAYOUT_FILE).write_text(json.dumps(layout) + "\n")
        # A node whose storage was lost joins the cluster id its peers were formatted with.
        cluster_id = next((cid for cid in (n.cluster_id() for n in self.nodes) if cid), None)
        cluster_id = cluster_id or _new_cluster_id()
        started = time.monotonic()
        for node in stopped:
            properties = node.write_config()
            if node.cluster_id() is None:
                node.format(java, cp, properties, cluster_id)
        for node in stopped:
            node.spawn(java, cp, node.home / "server.properties")
        try:
            self._wait_answering(timeout, stopped)
        except KafkaRuntimeError:
            self.stop()
            raise
        log.info(
            "kafka started",
            pid=self.pid(),
            bootstrap=self.bootstrap,
            count=self.brokers,
            seconds=round(time.monotonic() - started, 2),
        )
        return True

    def _refuse_other_layout(self) -> None:
        recorded = self._recorded_brokers()
        if recorded == self.brokers:
            return
        settings = self.settings
        if recorded > 1:
            settings = settings.model_copy(update={"kafka_controller_port": None})
        other = LocalKafka(settings, recorded)
        if any(pid is not None for pid in other.pids().values()):
            msg = (
                f"Kafka is running here with {recorded} broker(s); stop it (`sgb kafka stop`) before "
                f"starting {self.brokers}."
            )
            raise KafkaRuntimeError(msg)

    def _refuse_other_security(self) -> None:
        recorded = self._recorded("security", "plaintext")
        formatted = any(node.cluster_id() for node in self.nodes)
        if formatted and recorded != self.security_mode:
            msg = (
                f"The Kafka storage in {self.home} was formatted for security {recorded}, not "
                f"{self.security_mode}; start it as {recorded} or use another SGB_STATE_DIR."
            )
            raise KafkaRuntimeError(msg)

    def _wait_answering(self, timeout: float, spawned: list[KafkaNode] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in spawned or []:
                code = node.exited()
                if code is not None:
                    if node.bind_failed():
                        msg = (
                            f"Kafka node {node.node_id} could not listen on port {node.port} or "
                            f"{node.controller_port}: another process took it; choose another port "
                            "with SGB_KAFKA_PORT."
                        )
                        raise PortTaken(msg)
                    msg = (
                        f"Kafka node {node.node_id} exited during start (code {code}); "
                        f"see {node.log_dir / 'server.log'} and {node.log_dir / 'stdout.log'}."
                    )
                    raise KafkaRuntimeError(msg)
            if self.answering(timeout=1.0):
                return
            time.sleep(0.2)
        msg = (
            f"Kafka did not answer on {self.bootstrap} with {self.brokers} broker(s) within "
            f"{timeout:.0f} s; see {self.log_dir / 'server.log'}."
        )
        raise KafkaRuntimeError(msg)

    # -- one node, for fault tests -------------------------------------------------------------
    def kill_node(self, node_id: int) -> int:
        """SIGKILL one node (no controlled shutdown, as a crash or a pulled plug); returns its pid."""
        node = self.node(node_id)
        pid = node.signal(signal.SIGKILL)
        if pid is None:
            msg = f"Kafka node {node_id} is not running."
            raise KafkaRuntimeError(msg)
        node.wait_gone(pid, 10.0)
        log.info("kafka node killed", pid=pid, port=node.port)
        return pid

    def restart_node(self, node_id: int, timeout: float = START_TIMEOUT_S) -> int:
        """Start one stopped node again and wait until the cluster lists it; returns its pid."""
        node = self.node(node_id)
        if node.pid() is not None:
            msg = f"Kafka node {node_id} is already running."
            raise KafkaRuntimeError(msg)
        java = require("java", "Java")
        properties = node.write_config()
        pid = node.spawn(java, classpath(self.settings), properties)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = node.exited()
            if code is not None:
                msg = (
                    f"Kafka node {node_id} exited during restart (code {code}); "
                    f"see {node.log_dir / 'server.log'}."
                )
                raise KafkaRuntimeError(msg)
            if node.answering(timeout=1.0) and self.answering(timeout=1.0):
                log.info("kafka node restarted", pid=pid, port=node.port)
                return pid
            time.sleep(0.2)
        msg = f"Kafka node {node_id} did not rejoin within {timeout:.0f} s; see {node.log_dir}/server.log."
        raise KafkaRuntimeError(msg)

    # -- stop ----------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> bool:
        """Stop every node (SIGTERM together, then SIGKILL after ``timeout``). False if none was running."""
        signalled = [(node, pid) for node in self.nodes if (pid := node.signal(signal.SIGTERM)) is not None]
        if not signalled:
            return False
        deadline = time.monotonic() + timeout
        for node, pid in signalled:
            if not node.wait_gone(pid, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                node.wait_gone(pid, 10.0)
        log.info("kafka stopped", pid=signalled[0][1], count=len(signalled))
        return True


def _new_cluster_id() -> str:
    # An id starting with "-" would be read as an option by the storage tool (as Kafka's own
    # Uuid.randomUuid, draw again).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
