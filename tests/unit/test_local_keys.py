"""The local key directory: keys made at run time, owner-only, and one key however many
processes ask for it at once."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from broker.exceptions import SgbError
from broker.security.key_directory import LocalKeyDirectory


def _secret_after(barrier: object, directory: str, queue: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    queue.put(LocalKeyDirectory(Path(directory)).secret("pseudonymisation"))  # type: ignore[attr-defined]


def test_processes_starting_together_all_get_the_same_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(10):
        directory = tmp_path / f"keys-{attempt}"
        barrier, queue = context.Barrier(6), context.Queue()
        workers = [
            context.Process(target=_secret_after, args=(barrier, str(directory), queue)) for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        keys = {queue.get(timeout=30) for _ in workers}
        for worker in workers:
            worker.join(30)
        assert [worker.exitcode for worker in workers] == [0] * 6
        assert len(keys) == 1 and len(next(iter(keys))) == 32
        assert [p.name for p in directory.iterdir()] == ["pseudonymisation.key"]  # no temporary files left


def test_a_key_is_owner_only_and_stable(tmp_path: Path) -> None:
    keys = LocalKeyDirectory(tmp_path / "keys")
    first = keys.secret("kek")
    assert keys.secret("kek") == first and LocalKeyDirectory(tmp_path / "keys").secret("kek") == first
    assert stat.S_IMODE((tmp_path / "keys" / "kek.key").stat().st_mode) == 0o600
    assert keys.secret("other") != first


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "kek.key").write_bytes(b"short")
    with pytest.raises(SgbError, match=r"kek\.key is damaged"):
        LocalKeyDirectory(tmp_path).secret("kek")
