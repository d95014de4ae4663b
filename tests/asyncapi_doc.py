"""Running ``sgb`` as a user would, for the AsyncAPI document's tests (tests/e2e/test_asyncapi*.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"


def sgb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGB_")}
    return subprocess.run(
        [sys.executable, "-m", "sgb.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def generate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document as `sgb schemas asyncapi --output FILE.yaml` writes it."""
    path = tmp_path_factory.mktemp("asyncapi") / "sgb.asyncapi.yaml"
    result = sgb("schemas", "asyncapi", "--output", str(path))
    assert result.returncode == 0, result.stderr
    return path
