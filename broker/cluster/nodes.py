"""The pieces of the local cluster: one KRaft node's process, and who leads and who follows.

:class:`KafkaNode` is one JVM (broker and controller in one process) with its own folder,
ports and pid file; :class:`broker.cluster.local_kafka.LocalKafka` starts, stops, kills and
restarts a set of them. The partition helpers answer what fault tests and operators ask of
a running cluster (which broker leads this partition, which follow it, is every replica
back in sync) from an admin metadata request, and change nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException

from broker.clients import admin_client
from broker.cluster.tls import write_private
from broker.exceptions import KafkaRuntimeError, KafkaUnavailable
from broker.settings import Settings

if TYPE_CHECKING:
    from broker.cluster.security import BrokerSecurity

_LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    RollingFile:
      name: File
      fileName: "{log_dir}/server.log"
      filePattern: "{log_dir}/server.log.%i"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      Policies:
        SizeBasedTriggeringPolicy:
          size: 50MB
      DefaultRolloverStrategy:
        max: 3
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: File
"""


#: The logs a node's start writes to (log4j's file and the JVM's own output).
_START_LOGS = ("server.log", "stdout.log")


class KafkaNode:
    """One KRaft process (broker and controller in one JVM) of the local cluster.

    Args:
        settings: heap size and where the jars are cached.
        node_id: 1..N.
        home: the node's folder (configuration, ``data/``, ``logs/``, ``kafka.pid``).
        port: the client (PLAINTEXT) port; ``controller_port`` is the quorum's.
        voters: ``controller.quorum.voters`` of the whole cluster.
        cluster_size: how many nodes the cluster has (sets the internal topics' replication).
    """

    def __init__(
        self,
        settings: Settings,
        node_id: int,
        home: Path,
        port: int,
        controller_port: int,
        voters: str,
        cluster_size: int,
    ) -> None:
        self.settings = settings
        self.node_id = node_id
        self.home = home
        self.data_dir = home / "data"
        self.log_dir = home / "logs"
        self.pid_file = home / "kafka.pid"
        self.port = port
        self.controller_port = controller_port
        self.bootstrap = f"127.0.0.1:{port}"
        self.voters = voters
        self.cluster_size = cluster_size
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_starts: dict[str, int] = {}
        #: TLS, authentication and the authorizer (None: PLAINTEXT, everyone allowed everything).
        self.security: BrokerSecurity | None = None

    def pid(self) -> int | None:
        """The pid of this node if it is alive, else None (and a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"kafka.Kafka" not in cmdline or not _alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def answering(self, timeout: float = 2.0) -> bool:
        """True when this node answers a metadata request on its own port."""
        return answers(self.settings, self.bootstrap, timeout) > 0

    def config(self) -> dict[str, str]:
        """The node's ``server.properties``."""
        size = self.cluster_size
        replicated = str(min(3, size))
        min_isr = str(min(2, size))
        config = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # Topics are declared as code (deploy/topics.yaml); nothing appears by accident.
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            # Internal topics are replicated as far as the cluster allows (3 of 3, at least 2 in
            # sync), so that one node lost loses no committed offset or transaction state.
            # Fewer partitions than Kafka's defaults start faster.
            "default.replication.factor": replicated,
            "offsets.topic.replication.factor": replicated,
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": replicated,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.replication.factor": replicated,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            "min.insync.replicas": min_isr,
            "unclean.leader.election.enable": "false",
        }
        if self.security is not None:
            config.update(self.security.node_config(self.port, self.controller_port))
        return config

    def write_config(self) -> Path:
        """Write ``server.properties`` and the log configuration; returns the properties file."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j2.yaml").write_text(_LOG4J2.format(log_dir=self.log_dir))
        path = self.home / "server.properties"
        text = "".join(f"{k}={v}\n" for k, v in self.config().items())
        if self.security is None:
            path.write_text(text)
        else:  # it holds the broker's SCRAM password
            write_private(path, text.encode())
        return path

    def cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with, if it was."""
        try:
            text = (self.data_dir / "meta.properties").read_text()
        except FileNotFoundError:
            return None
        match = re.search(r"^cluster\.id=(\S+)$", text, re.MULTILINE)
        return match.group(1) if match else None

    def format(self, java: str, cp: str, properties: Path, cluster_id: str) -> None:
        """Format the node's storage for ``cluster_id`` (once: a formatted node keeps its data)."""
        cmd = [
            java,
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp",
            cp,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(properties),
            *(self.security.format_args() if self.security is not None else []),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            msg = f"Kafka could not format its storage in {self.data_dir}: {result.stderr.strip()[-300:]}"
            raise KafkaRuntimeError(msg)

    def spawn(self, java: str, cp: str, properties: Path) -> int:
        """Start the JVM in its own session; returns its pid (it is not yet answering)."""
        heap = self.settings.kafka_heap
        cmd = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            # C2 compiles for over a minute after each start (23 s of CPU in the first 50 s of a
            # latency run) on one of a small machine's cores while the broker serves; C1 alone is
            # at speed in seconds (issue 21: two integration test modules 293 -> 235 s).
            *(["-XX:TieredStopAtLevel=1"] if self.settings.kafka_jit == "quick" else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            cp,
            "kafka.Kafka",
            str(properties),
        ]
        # Where this start's output begins in each log, so bind_failed reads only this start's.
        self._log_starts = {
            name: (self.log_dir / name).stat().st_size if (self.log_dir / name).exists() else 0
            for name in _START_LOGS
        }
        with (self.log_dir / "stdout.log").open("ab") as stdout:
            self._proc = subprocess.Popen(
                cmd, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    def bind_failed(self) -> bool:
        """Whether this start's logs say a listener's port was taken (Java's BindException)."""
        for name, start in self._log_starts.items():
            path = self.log_dir / name
            if not path.exists():
                continue
            with path.open("rb") as log_file:
                log_file.seek(start)
                if b"Address already in use" in log_file.read(4 << 20):
                    return True
        return False

    def exited(self) -> int | None:
        """The exit code if the process this object spawned has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    def signal(self, signum: int) -> int | None:
        """Send ``signum`` to the node if it runs; returns its pid."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return pid

    def wait_gone(self, pid: int, timeout: float) -> bool:
        """Wait until ``pid`` has exited; False if it is still alive after ``timeout``."""
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                return False
            if self._proc is not None and self._proc.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(0.05)  # reaps our own child, so it does not linger as a zombie
            else:
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True


# -- partition metadata ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PartitionReplicas:
    """One partition's replicas as the cluster's metadata reports them.

    ``leader`` is -1 while the partition has none (for example in the seconds between a
    leader's crash and the controller electing another in-sync replica).
    """

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def followers(self) -> tuple[int, ...]:
        """The replicas that are not the leader, in-sync or not."""
        return tuple(r for r in self.replicas if r != self.leader)

    @property
    def in_sync(self) -> bool:
        """Every replica is in the in-sync set (the ISR is whole)."""
        return self.leader >= 0 and set(self.isr) == set(self.replicas)


def replicas(settings: Settings, topics: Iterable[str], timeout: float = 10.0) -> list[PartitionReplicas]:
    """Every partition of the named (physical) topics, in topic and partition order."""
    try:
        metadata = admin_client(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"Kafka at {settings.bootstrap} did not answer a metadata request: {exc.args[0].str()}."
        raise KafkaUnavailable(msg) from None
    out = []
    for name in topics:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            msg = f"Topic {name} is not in the cluster's metadata."
            raise KafkaUnavailable(msg)
        for number, partition in sorted(topic.partitions.items()):
            out.append(
                PartitionReplicas(
                    name, number, partition.leader, tuple(partition.replicas), tuple(partition.isrs)
                )
            )
    return out


def partition_replicas(
    settings: Settings, topic: str, partition: int, timeout: float = 10.0
) -> PartitionReplicas:
    """The leader, replicas and ISR of one partition of a (physical) topic."""
    for found in replicas(settings, [topic], timeout):
        if found.partition == partition:
            return found
    msg = f"Topic {topic} has no partition {partition}."
    raise KafkaUnavailable(msg)


def answers(settings: Settings, bootstrap: str, timeout: float) -> int:
    """How many brokers a metadata request to ``bootstrap`` lists (0 if none answers)."""
    if not any(port_open(int(server.rpartition(":")[2])) for server in bootstrap.split(",")):
        return 0
    try:
        admin = admin_client(settings.model_copy(update={"bootstrap_servers": bootstrap}))
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return 0
    return len(metadata.brokers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still "exists"; reap it if we can.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, IndexError):
        return False
    return state != "Z"


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on this loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
