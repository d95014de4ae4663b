"""Finding the files to read: one file, a folder, or a drop folder followed over time.

A file's identity is a hash of its content, so the same export dropped twice under two
names is recognised as one file (its checkpoint and its event ids are shared), and a file
that changes after it was read is a new file whose records get new event ids: exports must
not be appended to once dropped (write them elsewhere, or under a temporary name, and rename).
Files still being written are left alone: names starting with ``.`` or ending in ``.tmp``,
``.part`` or ``.partial`` are ignored, and
in watch mode a file is read only once its size and modification time have stopped
changing for ``settle_s`` seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path

from connectors.exceptions import ConnectorError

_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
_CHUNK = 1 << 20


def file_identity(path: Path) -> str:
    """A stable identity for a file's content (the first 32 hex digits of its SHA-256)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:32]


def _wanted(path: Path, suffixes: Iterable[str]) -> bool:
    name = path.name
    if name.startswith(".") or name.lower().endswith(_IGNORED_SUFFIXES):
        return False
    return path.is_file() and any(name.lower().endswith(s) for s in suffixes)


def list_files(source: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files a batch run reads: ``source`` itself, or the matching files in the folder, by name.

    Raises :class:`ConnectorError` when the source does not exist.
    """
    if source.is_file():
        return [source]
    if not source.is_dir():
        msg = f"Source {source} is neither a file nor a folder."
        raise ConnectorError(msg)
    return sorted((p for p in source.iterdir() if _wanted(p, suffixes)), key=lambda p: p.name)


def unsupported_files(source: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The visible files of a folder that a batch run does not read (another format), by name;
    none when ``source`` is a file."""
    if not source.is_dir():
        return []
    return sorted(
        (
            p
            for p in source.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and not p.name.lower().endswith(_IGNORED_SUFFIXES)
            and not _wanted(p, suffixes)
        ),
        key=lambda p: p.name,
    )


class DropFolder:
    """New, settled files in a folder, each reported once per process.

    Args:
        folder: the drop folder.
        suffixes: file name endings to read (lower case, with the dot).
        settle_s: how long a file's size and time must stay unchanged before it is read.
    """

    def __init__(self, folder: Path, suffixes: tuple[str, ...], settle_s: float = 1.0) -> None:
        if not folder.is_dir():
            msg = f"--watch needs a folder to follow, and {folder} is not one."
            raise ConnectorError(msg)
        self.folder = folder
        self.suffixes = suffixes
        self.settle_s = settle_s
        self._candidates: dict[Path, tuple[int, int, float]] = {}
        self._reported: dict[Path, tuple[int, int]] = {}

    def poll(self) -> list[Path]:
        """Files that appeared (or changed) and have settled since the last poll, oldest first."""
        now = time.monotonic()
        ready: list[tuple[int, str, Path]] = []
        present = set()
        for path in self.folder.iterdir():
            if not _wanted(path, self.suffixes):
                continue
            present.add(path)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            shape = (stat.st_size, stat.st_mtime_ns)
            if self._reported.get(path) == shape:
                continue
            seen = self._candidates.get(path)
            if seen is None or seen[:2] != shape:
                self._candidates[path] = (*shape, now)
                if self.settle_s > 0:
                    continue
                seen = self._candidates[path]
            if now - seen[2] >= self.settle_s:
                ready.append((stat.st_mtime_ns, path.name, path))
        for gone in set(self._candidates) - present:
            del self._candidates[gone]
        out = [p for _, _, p in sorted(ready)]
        for path in out:
            size, mtime, _ = self._candidates.pop(path)
            self._reported[path] = (size, mtime)
        return out
