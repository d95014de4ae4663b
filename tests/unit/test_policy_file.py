"""The filter's policy file watcher: a rejected file is said once, however often its time changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from structlog.testing import capture_logs

from consent.filter.policy_file import PolicyFile
from consent.policy import BASELINE

NOT_UTF8 = b"name: baseline\nversion: 1.0.0\n# caf\xe9 \xff\xfe\n"
REJECTED = "policy reload rejected; keeping the policy in force"


def _touch(path: Path, ahead: float) -> None:
    os.utime(path, (time.time() + ahead, time.time() + ahead))


def test_a_rejected_file_touched_again_is_not_rejected_twice(tmp_path: Path) -> None:
    """Writing a file and then setting its time (an editor, a copy that keeps times, a config
    map update) changes the time twice; the same bad content is one rejection, not two."""
    path = tmp_path / "policy.yaml"
    path.write_text(BASELINE.read_text())
    watched = PolicyFile(path)
    in_force = watched.policy.version_id
    with capture_logs() as logs:
        path.write_bytes(NOT_UTF8)
        _touch(path, 5)
        assert watched.changed() is None
        _touch(path, 10)
        assert watched.changed() is None
        path.write_text(BASELINE.read_text())
        _touch(path, 15)
        reloaded = watched.changed()
        path.write_bytes(NOT_UTF8)  # bad again after a good one: said again
        _touch(path, 20)
        assert watched.changed() is None
    rejected = [e for e in logs if e["event"] == REJECTED]
    assert len(rejected) == 2 and all("not UTF-8" in e["reason"] for e in rejected)
    assert reloaded is not None and watched.policy.version_id == in_force == reloaded.version_id
