"""The JSON-lines sink: one delivered copy per line, appended and fsynced, idempotent by event id."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from broker.hub.sinks.base import SinkError, SinkUnavailable, event_json

if TYPE_CHECKING:
    from broker.hub.delivered import HubEvent


class JsonlSink:
    """Append each new event as one JSON line, then fsync before returning.

    On opening, every event id already in the file is read, so a restart after a crash
    between the write and the offset commit skips what the file holds. A torn last line
    (a crash mid-write) is cut off: its event was never acknowledged and is read again.

    Args:
        path: the file; it and its folder are created (the file readable by its owner only).
    """

    kind = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            msg = f"Cannot open the sink file {path}: {exc.strerror or type(exc).__name__}."
            raise SinkError(msg) from None
        self._fd = fd
        self._ids = self._read_ids()

    def _read_ids(self) -> set[str]:
        ids: set[str] = set()
        good_end = 0
        with self.path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn by a crash: everything from here is cut
                good_end += len(line)
                try:
                    ids.add(json.loads(line)["event_id"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line another tool wrote; not ours to judge
        if good_end < os.fstat(self._fd).st_size:
            self._cut(good_end)
        return ids

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def write(self, events: Sequence[HubEvent]) -> int:
        fresh: list[HubEvent] = []
        seen: set[str] = set()
        for event in events:
            if event.event_id not in self._ids and event.event_id not in seen:
                fresh.append(event)
                seen.add(event.event_id)
        if not fresh:
            return 0
        data = "".join(event_json(e) + "\n" for e in fresh).encode("utf-8")
        size = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            self._cut(size)
            msg = f"Writing the sink file {self.path} failed: {exc.strerror or type(exc).__name__}."
            raise SinkUnavailable(msg) from None
        self._ids.update(seen)
        return len(fresh)

    def _cut(self, size: int) -> None:
        # A half-written batch must not stay: the next line would be glued to its torn end.
        try:
            os.ftruncate(self._fd, size)
            os.fsync(self._fd)
        except OSError:
            pass  # the torn tail is cut when the file is next opened

    def close(self) -> None:
        os.close(self._fd)
