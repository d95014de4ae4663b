"""The local Apache Kafka runtime: real broker jars from Maven Central, started without Docker.

``sgb kafka start`` runs one combined broker+controller (KRaft, no ZooKeeper) on loopback.
Its jars are resolved by ``deploy/kafka/pom.xml`` into a cache shared by every checkout;
its configuration, data, pid and logs live under ``<state_dir>/kafka``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from broker.exceptions import KafkaRuntimeError
from broker.logs import get_logger
from broker.settings import Settings

log = get_logger("broker.kafka")

REPO_ROOT = Path(__file__).resolve().parent.parent
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
START_TIMEOUT_S = 90.0

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


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in the Maven file."""
    try:
        text = pom.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"The Maven file for Kafka's jars is missing: {pom}."
        raise KafkaRuntimeError(msg) from None
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", text)
    if not match:
        msg = f"{pom} does not pin <kafka.version>."
        raise KafkaRuntimeError(msg)
    return match.group(1).strip()


def _require(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        msg = f"{why} is not installed: no `{tool}` on PATH (on Debian: apt-get install {_PACKAGES[tool]})."
        raise KafkaRuntimeError(msg)
    return path


_PACKAGES = {"java": "openjdk-17-jre-headless", "mvn": "maven"}


def jars_dir(settings: Settings) -> Path:
    """Where the jars of the pinned Kafka version are cached."""
    return settings.cache_dir / f"kafka-{kafka_version()}" / "libs"


def fetch_jars(settings: Settings, *, quiet: bool = False) -> Path:
    """Resolve the broker's jars from Maven Central into the cache, once. Returns the folder."""
    target = jars_dir(settings)
    if (target / ".complete").exists():
        return target
    _require("java", "Java")
    mvn = _require("mvn", "Maven")
    version = kafka_version()
    if not quiet:
        print(f"Fetching Apache Kafka {version} jars from Maven Central into {target} (first run only)...", flush=True)
    staging = target.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-f", str(POM), "-B", "-q", "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        msg = "Maven could not fetch Kafka's jars from Maven Central: " + " | ".join(tail)
        raise KafkaRuntimeError(msg)
    (staging / ".complete").write_text(version + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log.info("kafka jars fetched", version=version, path=str(target))
    return target


def classpath(settings: Settings) -> str:
    """The Java class path of the cached Kafka jars."""
    return str(fetch_jars(settings) / "*")


@dataclass(frozen=True)
class KafkaStatus:
    """What ``sgb kafka status`` reports."""

    running: bool
    answering: bool
    pid: int | None
    bootstrap: str
    version: str
    log_file: Path


class LocalKafka:
    """One local KRaft node (broker and controller in one process) on loopback.

    Args:
        settings: where state lives and which ports to use.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.pid_file = self.home / "kafka.pid"
        self.port = settings.kafka_port
        self.controller_port = settings.kafka_controller_port or settings.kafka_port + 1
        self.bootstrap = f"127.0.0.1:{self.port}"

    # -- state ---------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our broker if it is alive, else None (and a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"kafka.Kafka" not in cmdline:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def answering(self, timeout: float = 2.0) -> bool:
        """True when the broker answers a metadata request."""
        if not _port_open(self.port):
            return False
        from broker.clients import admin_client

        try:
            admin = admin_client(self.settings.model_copy(update={"bootstrap_servers": self.bootstrap}))
            metadata = admin.list_topics(timeout=timeout)
        except Exception:
            return False
        return bool(metadata.brokers)

    def status(self) -> KafkaStatus:
        """The broker's state as ``sgb kafka status`` shows it."""
        pid = self.pid()
        return KafkaStatus(
            running=pid is not None,
            answering=pid is not None and self.answering(),
            pid=pid,
            bootstrap=self.bootstrap,
            version=kafka_version(),
            log_file=self.log_dir / "server.log",
        )

    # -- start ---------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Start the broker and wait until it answers. Returns False if it was already running."""
        if self.pid() is not None:
            self._wait_answering(timeout)
            return False
        java = _require("java", "Java")
        cp = classpath(self.settings)
        for port in (self.port, self.controller_port):
            if _port_open(port):
                msg = (
                    f"Port {port} on 127.0.0.1 is already in use by another process; "
                    "stop it or choose another port with SGB_KAFKA_PORT."
                )
                raise KafkaRuntimeError(msg)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        properties = self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format(java, cp, properties)
        stdout = (self.log_dir / "stdout.log").open("ab")
        heap = self.settings.kafka_heap
        cmd = [
            java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.log_dir}", "-cp", cp, "kafka.Kafka", str(properties),
        ]
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        stdout.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            self._wait_answering(timeout, proc)
        except KafkaRuntimeError:
            self.stop()
            raise
        log.info("kafka started", pid=proc.pid, bootstrap=self.bootstrap,
                 seconds=round(time.monotonic() - started, 2))
        return True

    def _write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j2.yaml").write_text(_LOG4J2.format(log_dir=self.log_dir))
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # Topics are declared as code (deploy/topics.yaml); nothing appears by accident.
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            # One node: internal topics cannot be replicated, and fewer partitions start faster.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "min.insync.replicas": "1",
        }
        path = self.home / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return path

    def _format(self, java: str, cp: str, properties: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [
            java, f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}", "-cp", cp,
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            msg = f"Kafka could not format its storage in {self.data_dir}: {result.stderr.strip()[-300:]}"
            raise KafkaRuntimeError(msg)

    def _wait_answering(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                msg = (
                    f"Kafka exited during start (code {proc.returncode}); "
                    f"see {self.log_dir / 'server.log'} and {self.log_dir / 'stdout.log'}."
                )
                raise KafkaRuntimeError(msg)
            if self.answering(timeout=1.0):
                return
            time.sleep(0.2)
        msg = f"Kafka did not answer on {self.bootstrap} within {timeout:.0f} s; see {self.log_dir / 'server.log'}."
        raise KafkaRuntimeError(msg)

    # -- stop ----------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``). False if none was running."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        log.info("kafka stopped", pid=pid)
        return True


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


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
