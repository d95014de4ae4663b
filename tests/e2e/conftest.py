"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncapi_doc import sgb


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document as `sgb schemas asyncapi --output FILE.yaml` writes it."""
    path = tmp_path_factory.mktemp("asyncapi") / "sgb.asyncapi.yaml"
    result = sgb("schemas", "asyncapi", "--output", str(path))
    assert result.returncode == 0, result.stderr
    return path
