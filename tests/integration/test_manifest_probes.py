"""The probes in deploy/k8s and deploy/compose pass: each process is started with the exact
arguments its manifest gives it (only the port numbers, the pod name and the state folder are
moved, so tests do not collide) and its probe answers as the kubelet or Docker would ask it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from broker.settings import Settings
from tests.conftest import sgb_env

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _container(file: str, name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all((K8S / file).read_text()):
        if doc and doc["kind"] in ("StatefulSet", "Deployment") and doc["metadata"]["name"] == name:
            return dict(doc["spec"]["template"]["spec"]["containers"][0])
    raise AssertionError(f"{name} is not in {file}")


def _first_hub() -> str:
    for doc in yaml.safe_load_all((K8S / "60-hubs.yaml").read_text()):
        if doc and doc["kind"] == "Deployment":
            return str(doc["metadata"]["name"])
    raise AssertionError("no hub Deployment")


def _moved(args: list[str], ports: dict[int, int], state: Path) -> list[str]:
    out = []
    for arg in args:
        for old, new in ports.items():
            arg = arg.replace(str(old), str(new)) if arg == str(old) or f":{old}" in arg else arg
        arg = arg.replace("$(POD_NAME)", "sgb-filter-0").replace("/var/lib/sgb", str(state))
        out.append(
            arg.replace("/opt/sgb/mappings", str(REPO / "connectors" / "mappings"))
        )  # the image's copy
    return out


def _http_port(container: dict[str, Any], probe: str) -> int:
    """The number behind the probe's named port, checked against what the process is told."""
    named = container[probe]["httpGet"]["port"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == named)
    args = container["args"]
    assert args[args.index("--metrics-port") + 1] == str(port), (
        "the probe asks a port the process does not serve"
    )
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0", (
        "a loopback bind is unreachable for the kubelet"
    )
    return int(port)


@contextmanager
def _running(settings: Settings, args: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = sgb_env(settings.model_copy(update={"state_dir": tmp_path / "state"}))
    log = (tmp_path / "process.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "sgb.cli", *args], env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _wait_ok(url: str, process: subprocess.Popen[bytes], tmp_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "process.log").read_text()[-2000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {timeout:.0f} s")


def _check_http_probes(
    kafka: Settings, container: dict[str, Any], tmp_path: Path, also: dict[int, int] | None = None
) -> None:
    port = _http_port(container, "readinessProbe")
    local = _free_port()
    args = _moved(container["args"], {port: local, **(also or {})}, tmp_path)
    with _running(kafka, args, tmp_path) as process:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                _wait_ok(f"http://127.0.0.1:{local}{container[probe]['httpGet']['path']}", process, tmp_path)
        metrics = httpx.get(f"http://127.0.0.1:{local}/metrics", timeout=5)
        assert metrics.status_code == 200 and "sgb_" in metrics.text


@pytest.mark.kafka
def test_k8s_filter_probes_pass(kafka: Settings, tmp_path: Path) -> None:
    _check_http_probes(kafka, _container("40-filter.yaml", "sgb-filter"), tmp_path)


@pytest.mark.kafka
def test_k8s_hub_probes_pass(kafka: Settings, tmp_path: Path) -> None:
    _check_http_probes(kafka, _container("60-hubs.yaml", _first_hub()), tmp_path)


@pytest.mark.kafka
def test_k8s_mllp_listener_probes_pass(kafka: Settings, tmp_path: Path) -> None:
    container = _container("50-connectors.yaml", "sgb-connector-health")
    mllp = next(p["containerPort"] for p in container["ports"] if p["name"] == "mllp")
    _check_http_probes(kafka, container, tmp_path, {mllp: _free_port()})


@pytest.mark.kafka
def test_k8s_police_drop_folder_probes_pass(kafka: Settings, tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()  # the manifest's /var/lib/sgb/drop
    _check_http_probes(kafka, _container("50-connectors.yaml", "sgb-connector-police"), tmp_path)


@pytest.mark.kafka
@pytest.mark.parametrize("service", ["filter-1", "hub-school-dsl-100000", "connector-police"])
def test_compose_healthchecks_pass(kafka: Settings, tmp_path: Path, service: str) -> None:
    spec = yaml.safe_load(COMPOSE.read_text())["services"][service]
    check = " ".join(spec["healthcheck"]["test"])
    assert "http://127.0.0.1:8081/readyz" in check
    local = _free_port()
    (tmp_path / "drop").mkdir()  # the police connector's drop folder
    args = _moved([str(a) for a in spec["command"]], {8081: local}, tmp_path)
    with _running(kafka, args, tmp_path) as process:
        _wait_ok(f"http://127.0.0.1:{local}/readyz", process, tmp_path)
        _wait_ok(spec["environment"]["HEALTHCHECK_URL"].replace("8081", str(local)), process, tmp_path)
