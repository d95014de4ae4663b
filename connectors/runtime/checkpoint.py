"""Durable progress: how far each file has been published, kept under the state directory.

Layout: ``<state_dir>/connectors/<name>/files/<file id>.json`` holds ``{"file", "done",
"complete"}``, where ``done`` counts the records (from the file's first) that are finished:
published and acknowledged, dead-lettered and acknowledged, or needing no event. Each write
is atomic (a temporary file, fsync, rename, fsync of the folder), so a crash leaves the old
checkpoint or the new one, never a torn one. A lock file stops two processes sharing one
connector's checkpoints.

:class:`ContiguousTracker` turns per-record acknowledgements, which arrive out of order
across partitions, into the one number a checkpoint may hold: the count of records from
the start of the file that are all acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from connectors.exceptions import ConnectorError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True, slots=True)
class FileProgress:
    """What a checkpoint says about one file."""

    file: str
    done: int
    complete: bool


class ContiguousTracker:
    """The highest contiguous acknowledged position of one file.

    Args:
        start: records before this ordinal are already done (from the checkpoint).
    """

    __slots__ = ("_acked", "done")

    def __init__(self, start: int = 0) -> None:
        self.done = start
        self._acked: set[int] = set()

    def ack(self, ordinal: int) -> None:
        """Record that ``ordinal`` is finished; ``done`` moves past every contiguous one."""
        if ordinal < self.done:
            return
        if ordinal != self.done:
            self._acked.add(ordinal)
            return
        done = ordinal + 1
        acked = self._acked
        while done in acked:
            acked.discard(done)
            done += 1
        self.done = done

    @property
    def pending(self) -> int:
        """Acknowledged records still waiting behind an unacknowledged one."""
        return len(self._acked)

    def after(self, ordinals: list[int]) -> int:
        """What ``done`` would be once ``ordinals`` are acknowledged too (nothing changes here)."""
        copy = ContiguousTracker(self.done)
        copy._acked = set(self._acked)
        for ordinal in sorted(ordinals):
            copy.ack(ordinal)
        return copy.done


def validate_name(name: str) -> str:
    """Return ``name`` if it can name a connector (its folder and transactional id), else raise."""
    if not _NAME.match(name):
        msg = (
            "Connector name must start with a letter or digit and use only letters, digits, '.', '_' "
            "and '-' (at most 100 characters)."
        )
        raise ConnectorError(msg)
    return name


class CheckpointStore:
    """One connector's checkpoints.

    Args:
        root: ``<state_dir>/connectors/<name>``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files_dir = root / "files"
        self._lock: IO[str] | None = None
        self._made = False

    def lock(self) -> None:
        """Take the connector's lock, or fail with a sentence if another process holds it."""
        self.files_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.root / "lock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            msg = (
                f"Another process is already running the connector whose state is in {self.root}; "
                "stop it, or give this one a different --name."
            )
            raise ConnectorError(msg) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        """Release the lock (also released by the kernel if the process dies)."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def get(self, file_id: str) -> FileProgress | None:
        """The checkpoint of a file, or None if it was never started."""
        path = self._path(file_id)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            msg = f"Checkpoint {path} is unreadable; move it aside to re-read that file from its start."
            raise ConnectorError(msg) from None
        return FileProgress(str(data.get("file", "")), int(data.get("done", 0)), bool(data.get("complete")))

    def put(self, file_id: str, progress: FileProgress) -> None:
        """Write a file's checkpoint atomically and durably."""
        if not self._made:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            self._made = True
        path = self._path(file_id)
        tmp = path.with_suffix(".tmp")
        body = json.dumps({"file": progress.file, "done": progress.done, "complete": progress.complete})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(self.files_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _path(self, file_id: str) -> Path:
        return self.files_dir / f"{file_id}.json"
