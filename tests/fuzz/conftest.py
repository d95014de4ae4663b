"""Fuzz settings: a bounded, derandomized profile for ``make test`` and a long one for ``make fuzz``.

``SGB_FUZZ_PROFILE=long`` (what ``make fuzz`` sets) raises the examples per target to
``SGB_FUZZ_EXAMPLES`` (default 2000) with a random seed; the CI profile is reproducible.
At the end of the session the examples tried per target are printed and written as JSON
to ``SGB_FUZZ_SUMMARY`` (default ``fuzz-summary.json`` in the pytest cache-free temp dir).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzzkit import TRIED
from hypothesis import HealthCheck, settings

_COMMON = {
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    "database": None,
    "print_blob": True,
}
settings.register_profile("ci", max_examples=int(os.environ.get("SGB_FUZZ_EXAMPLES", "400")),
                          derandomize=True, deadline=5000, **_COMMON)
settings.register_profile("long", max_examples=int(os.environ.get("SGB_FUZZ_EXAMPLES", "2000")),
                          deadline=10000, **_COMMON)
settings.load_profile(os.environ.get("SGB_FUZZ_PROFILE", "ci"))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the files the examples write (one file per target, rewritten per example)."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="session")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A local file whose content must never appear in any outcome (external-entity reads)."""
    folder = tmp_path_factory.mktemp("canary")
    content = "SGB-CANARY-" + os.urandom(8).hex()
    path = folder / "canary.txt"
    path.write_text(content, encoding="utf-8")
    yield path, content


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TRIED:
        return
    terminalreporter.section("fuzz examples tried per target")
    for target, n in sorted(TRIED.items()):
        terminalreporter.write_line(f"{target:32} {n}")
    where = Path(os.environ.get("SGB_FUZZ_SUMMARY") or Path(tempfile.gettempdir()) / "sgb-fuzz-summary.json")
    profile = os.environ.get("SGB_FUZZ_PROFILE", "ci")
    where.write_text(json.dumps({"profile": profile, "tried": dict(sorted(TRIED.items())),
                                 "total": sum(TRIED.values())}, indent=2) + "\n", encoding="utf-8")
    terminalreporter.write_line(f"written to {where}")
