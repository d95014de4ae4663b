"""The wheel works as installed: built from this tree, installed into a fresh virtual environment
outside the checkout, every command that reads a file at run time finds it inside the package.

The fresh environment gets the wheel only; its dependencies come from the project's own
environment through a path file (so no download), which does not carry the editable install of
this checkout: ``import schemas`` must resolve inside the new environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.settings import Settings
from tests.factories import domestic_abuse_incident

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin`` folder of a fresh venv holding only the wheel built from this tree."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, REPO],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("sgb-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The project's dependencies, without its editable install (a path file's folder is added
    # to sys.path, but path files inside it are not run).
    (Path(site) / "sgb-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield venv / "bin"


def _run(bin_dir: Path, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bin_dir / "sgb", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGB_") and k != "PYTHONPATH"}
    env.update({"SGB_STATE_DIR": str(tmp_path / "state"), "SGB_LOG_FORMAT": "json", **extra})
    return env


def test_the_installed_packages_are_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [installed / "python", "-c", "import schemas, sgb; print(schemas.__file__); print(sgb.__file__)"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(not Path(p).resolve().is_relative_to(REPO) for p in found), found


def test_offline_commands_find_their_files(installed: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    asyncapi = _run(installed, tmp_path, env, "schemas", "asyncapi", "--output", str(tmp_path / "api.yaml"))
    assert asyncapi.returncode == 0, asyncapi.stderr
    assert "sg.deliver." in (tmp_path / "api.yaml").read_text()

    k8s = _run(installed, tmp_path, env, "deploy", "k8s", "--output", str(tmp_path / "k8s"))
    assert k8s.returncode == 0, k8s.stderr
    assert any("KafkaTopic" in p.read_text() for p in (tmp_path / "k8s").glob("*.yaml"))

    event = tmp_path / "event.json"
    event.write_text(json.dumps(domestic_abuse_incident(), default=str))
    evaluate = _run(installed, tmp_path, env, "policy", "evaluate", "--event", str(event))
    assert evaluate.returncode == 0, evaluate.stderr
    assert {d["audience"] for d in json.loads(evaluate.stdout)["decisions"]} >= {"MASH", "SCHOOL_DSL"}

    # The setting overrides the shipped declaration.
    moved = tmp_path / "elsewhere.yaml"
    other = _run(
        installed,
        tmp_path,
        _env(tmp_path, SGB_TOPICS_FILE=str(moved)),
        "policy",
        "evaluate",
        "--event",
        str(event),
    )
    assert other.returncode == 1 and f"Topic declaration {moved} does not exist." in other.stderr

    # The jars are cached by the project's own runs; the command must read the shipped Maven file.
    fetch = _run(
        installed, tmp_path, _env(tmp_path, SGB_CACHE_DIR=str(Settings().cache_dir)), "kafka", "fetch"
    )
    assert fetch.returncode == 0, fetch.stderr


@pytest.mark.kafka
def test_cluster_commands_find_the_declaration(installed: Path, kafka: Settings, tmp_path: Path) -> None:
    env = _env(tmp_path, SGB_BOOTSTRAP_SERVERS=kafka.bootstrap, SGB_TOPIC_PREFIX=kafka.topic_prefix)
    applied = _run(installed, tmp_path, env, "topics", "apply", "--dry-run")
    assert applied.returncode == 0, applied.stderr
    assert "unchanged" in applied.stdout
    # The declaration is read first; on this plaintext test broker the command then says that
    # credentials need a secured cluster, which proves it got past the file.
    listed = _run(installed, tmp_path, env, "credentials", "list")
    assert "Traceback" not in listed.stderr, listed.stderr
    assert "Topic declaration" not in listed.stderr and "secured cluster" in listed.stderr, listed.stderr
