"""Fuzz fixtures, markers and the count of examples tried per target.

The hypothesis settings are in :mod:`fuzzkit` and applied to each fuzz test (``@FUZZ``), so
the suite's other property tests keep their own. The CI profile (the default) tries
``SGB_FUZZ_EXAMPLES`` (default 400) examples per target, derandomized so every run tries the
same ones; ``SGB_FUZZ_PROFILE=long`` (what ``make fuzz`` sets) tries ``SGB_FUZZ_EXAMPLES``
(default 2000) with a random seed and longer deadlines. At the end of the session the
examples tried per target are printed and written as JSON to ``SGB_FUZZ_SUMMARY`` (default
``sgb-fuzz-summary.json`` in the system's temp folder).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fuzzkit import PROFILE, TRIED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests here ``fuzz``; in the CI profile, no test may run longer than two minutes
    (a hang is a failure, whatever the examples' own deadlines)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fuzz)
            if PROFILE == "ci":
                item.add_marker(pytest.mark.timeout(120))


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
    where.write_text(
        json.dumps(
            {"profile": PROFILE, "tried": dict(sorted(TRIED.items())), "total": sum(TRIED.values())}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    terminalreporter.write_line(f"written to {where}")
