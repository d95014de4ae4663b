"""The JSON-lines sink: one delivered copy per line, appended and fsynced, idempotent by event id.

A correction is a line of its own (it has its own event id); an erasure also rewrites the
file, replacing every line that holds or amends the erased event by its stub
(:mod:`broker.hub.sinks.corrections`), so no copy of the child's fields stays readable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from broker.hub.sinks.base import SinkError, SinkUnavailable, event_json
from broker.hub.sinks.corrections import ERASED, correction_of, erased_line

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
        erased: dict[str, str] = {}
        for event in fresh:
            found = correction_of(event.record)
            if found is not None and found[0] == ERASED:
                erased[found[1]] = event.event_type
        lines = [(event_json(e) + "\n").encode("utf-8") for e in fresh]
        if erased:  # before the erasure's own line is written, so a crash between redoes it
            self._erase(erased)
            lines = [erased_line(line, erased) for line in lines]
        data = b"".join(lines)
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

    def _erase(self, erased: dict[str, str]) -> None:
        """Rewrite the file with the erased events' lines replaced by their stubs (atomically:
        a crash leaves the old file or the new one; the erasure's line, not yet written, is not
        acknowledged, so it is applied again)."""
        temporary = self.path.with_name(self.path.name + ".erasing")
        try:
            with self.path.open("rb") as old, temporary.open("wb") as new:
                for line in old:
                    new.write(erased_line(line, erased))
                new.flush()
                os.fsync(new.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            msg = f"Erasing from the sink file {self.path} failed: {exc.strerror or type(exc).__name__}."
            raise SinkUnavailable(msg) from None

    def _cut(self, size: int) -> None:
        # A half-written batch must not stay: the next line would be glued to its torn end.
        try:
            os.ftruncate(self._fd, size)
            os.fsync(self._fd)
        except OSError:
            pass  # the torn tail is cut when the file is next opened

    def close(self) -> None:
        os.close(self._fd)
