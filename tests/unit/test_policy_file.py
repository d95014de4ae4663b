"""The filter's policy file watcher (a rejected file is said once, however often its time
changes; the file is read once per change) and its read of who is onboarded."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from broker.settings import Settings
from consent.filter import policy_file
from consent.filter.policy_file import Onboarded, PolicyFile
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


def test_a_good_file_is_not_taken_for_a_bad_one_written_while_it_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher read the file twice, once for the rejection digest and once to load it. A
    bad file written between the two reads was rejected under the good file's digest, and the
    good file saved again was then skipped as "already rejected": its policy was never loaded
    and nothing said so."""
    path = tmp_path / "policy.yaml"
    path.write_text(BASELINE.read_text())
    watched = PolicyFile(path)
    good = BASELINE.read_text().replace("version:", "# reviewed\nversion:", 1)
    path.write_text(good)
    _touch(path, 5)
    read_bytes = Path.read_bytes
    swapped = []

    def read_then_replace(self: Path) -> bytes:
        data = read_bytes(self)
        if self == path and not swapped:  # an editor's bad save lands just after this read
            swapped.append(True)
            self.write_bytes(NOT_UTF8)
            _touch(self, 10)
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_replace)
    watched.changed()
    path.write_text(good)  # saved again, right, before the watcher looked again
    _touch(path, 15)
    watched.changed()
    assert watched.policy.content_hash == hashlib.sha256(good.encode()).hexdigest()


def test_a_policy_saved_with_windows_line_ends_keeps_its_version(tmp_path: Path) -> None:
    """The version id carries the content hash: line ends are not content."""
    lf, crlf = tmp_path / "lf.yaml", tmp_path / "crlf.yaml"
    lf.write_bytes(BASELINE.read_bytes().replace(b"\r\n", b"\n"))
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    assert PolicyFile(crlf).policy.version_id == PolicyFile(lf).policy.version_id


def test_onboarding_is_read_again_on_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new admin client per read connected and fetched every topic's metadata first: the
    filter's loop stood still 60-90 ms every 30 s. One client answers every read, and a topic
    made for a new organisation is still seen at the next read."""
    made: list[object] = []
    topics = {"sg.deliver.mash.202.v1": None}

    class Admin:
        def list_topics(self, timeout: float) -> object:
            return type("Metadata", (), {"topics": dict(topics)})()

    def admin_client(settings: Settings) -> Admin:
        made.append(settings)
        return Admin()

    monkeypatch.setattr(policy_file, "admin_client", admin_client)
    onboarded = Onboarded(Settings(), every=30.0)
    onboarded.refresh(force=True)
    assert onboarded("MASH", "202") and not onboarded("MASH", "203")
    topics["sg.deliver.mash.203.v1"] = None  # onboarded while the filter runs
    onboarded.refresh(force=True)
    onboarded.refresh(force=True)
    assert onboarded("MASH", "203")
    assert len(made) == 1
