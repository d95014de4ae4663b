"""The file connector loop: read, map, publish or dead-letter, commit, checkpoint.

One record at a time, in file order:

1. skip it if the checkpoint says it is done (counted as ``already_done``);
2. map it; a record the reader could not parse, or the mapping rejects, becomes a dead
   letter with its position and reason; a record with nothing to publish is just done;
3. add its event or dead letter to the open Kafka transaction;
4. every ``batch_size`` records or ``commit_interval_s`` seconds, and at the end of each
   file: commit the transaction, then move each file's checkpoint to its highest contiguous
   acknowledged record (see :mod:`connectors.runtime.delivery` for what a crash between the
   two can and cannot do).

A stop request (SIGTERM, Ctrl-C) is honoured between records: the open batch is committed
and checkpointed, so the next run resumes exactly where this one stopped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from broker.exceptions import SerdeError
from broker.logs import get_logger
from connectors.exceptions import MappingError, NoEvent, SourceFileError
from connectors.runtime.checkpoint import CheckpointStore, ContiguousTracker, FileProgress
from connectors.runtime.progress import COUNT_NAMES, Progress
from connectors.runtime.readers import FileRef, Malformed, Reader
from connectors.runtime.records import MapRecord, SourceRecord
from connectors.runtime.sources import DropFolder, file_identity, list_files, unread_candidates

log = get_logger("connectors.pipeline")


class Delivery(Protocol):
    """Where records go (Kafka in a transaction, see :class:`TransactionalDelivery`)."""

    @property
    def pending(self) -> int: ...

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None: ...

    def dead_letter(self, record: SourceRecord, reason: str) -> None: ...

    def skip(self, record: SourceRecord) -> None: ...

    def positions(self) -> list[tuple[str, int]]: ...

    def checkpoint(self, file_id: str, progress: FileProgress) -> None: ...

    def commit(self) -> list[tuple[str, int]]: ...

    def close(self) -> None: ...


@dataclass
class Summary:
    """What a run did. ``counts`` has the keys of :data:`COUNT_NAMES`."""

    counts: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    files: int = 0
    failed_files: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def used_nothing(self) -> bool:
        """Whether the run read nothing it could use: no record published, dead-lettered, done
        before or mapped to nothing for a reason of its own (only unread files and records of
        kinds it does not use)."""
        c = self.counts
        usable = c["published"] + c["dead_lettered"] + c["already_done"] + c["no_event"]
        not_used = sum(n for k, n in self.kinds.items() if k != "file_not_read")
        return usable - not_used <= 0

    def line(self) -> str:
        """One sentence a person reads at the end of a run."""
        c = self.counts
        text = (
            f"{self.files} file(s): {c['read']} read, {c['published']} published, "
            f"{c['dead_lettered']} dead-lettered, {c['already_done']} skipped as already done, "
            f"{c['no_event']} with nothing to publish."
        )
        kinds = {k: n for k, n in self.kinds.items() if k != "file_not_read"}
        if kinds:
            parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
            text = text[:-1] + f" ({parts})."
        if self.kinds["file_not_read"]:
            text += f" {self.kinds['file_not_read']} file(s) not read: not a format this connector reads."
        if self.failed_files:
            text += f" {len(self.failed_files)} file(s) could not be read."
        if self.stopped:
            text += " Stopped on request; run again to resume."
        return text


class FileConnector:
    """One connector reading files.

    Args:
        name: the connector's name (its checkpoints and event ids depend on it).
        reader: reads the source format.
        mapper: the pure mapping function.
        delivery: where events and dead letters go.
        store: the connector's checkpoints (locked for the run by the caller).
        batch_size: most records in one transaction.
        commit_interval_s: most seconds between commits (and checkpoint writes).
        progress: progress reporting; stats lines when ``None`` and not on a terminal.
        throttle: records per second at most (for tests that must stop a run mid-file).
    """

    def __init__(
        self,
        name: str,
        reader: Reader,
        mapper: MapRecord,
        delivery: Delivery,
        store: CheckpointStore,
        *,
        batch_size: int = 5000,
        commit_interval_s: float = 0.5,
        progress: Progress | None = None,
        throttle: float | None = None,
    ) -> None:
        self.name = name
        self.reader = reader
        self.mapper = mapper
        self.delivery = delivery
        self.store = store
        self.batch_size = batch_size
        self.commit_interval_s = commit_interval_s
        self.summary = Summary()
        self.progress = progress or Progress(self.summary.counts)
        self.throttle = throttle
        self._batch_counts: Counter[str] = Counter()
        self._trackers: dict[str, tuple[str, ContiguousTracker]] = {}
        self._last_commit = time.monotonic()

    # -- modes -----------------------------------------------------------------------------
    def run_batch(self, source: Path, stop: threading.Event) -> Summary:
        """Read a file, or every matching file in a folder, then return the summary."""
        root = source if source.is_dir() else source.parent
        if source.is_dir():
            self._unread_files(source)
        for path in list_files(source, self.reader.suffixes):
            if stop.is_set():
                break
            self._run_file(path, root, stop)
        return self._finish(stop)

    def run_watch(
        self, folder: Path, stop: threading.Event, poll_s: float = 2.0, settle_s: float = 1.0
    ) -> Summary:
        """Follow a drop folder, reading each new file once it has settled, until ``stop``."""
        drop = DropFolder(folder, self.reader.suffixes, settle_s)
        log.info("watching drop folder", path=str(folder))
        while not stop.is_set():
            for path in drop.poll():
                if stop.is_set():
                    break
                self._run_file(path, folder, stop)
            self.progress.tick()
            stop.wait(poll_s)
        return self._finish(stop)

    def _unread_files(self, folder: Path) -> None:
        """Count (and log once) the files of the folder this reader does not read, by suffix."""
        wanted = set(list_files(folder, self.reader.suffixes))
        unread = [p for p in unread_candidates(folder) if p not in wanted]
        if unread:
            self.summary.kinds["file_not_read"] += len(unread)
            log.warning(
                "files not read",
                count=len(unread),
                suffixes=sorted({p.suffix.lower() or "(none)" for p in unread}),
                reads=list(self.reader.suffixes),
            )

    def _finish(self, stop: threading.Event) -> Summary:
        self.summary.stopped = stop.is_set()
        log.info(
            "connector finished",
            counts={k: self.summary.counts[k] for k in COUNT_NAMES},
            errors=len(self.summary.failed_files),
            status="stopped" if self.summary.stopped else "done",
        )
        return self.summary

    # -- one file --------------------------------------------------------------------------
    def _run_file(self, path: Path, root: Path, stop: threading.Event) -> None:
        relative = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        try:
            file_id = file_identity(path)
        except OSError:
            self._failed(f"File {relative} could not be read.")
            return
        saved = self.store.get(file_id)
        self.summary.files += 1
        if saved is not None and saved.complete:
            self.summary.counts["read"] += saved.done
            self.summary.counts["already_done"] += saved.done
            log.info("file already done", path=relative, records=saved.done)
            return
        already = saved.done if saved else 0
        tracker = ContiguousTracker(already)
        self._trackers[file_id] = (relative, tracker)
        ref = FileRef(path, self.name, relative, file_id)
        self.progress.start_file(relative, self.reader.estimate(path))
        finished = False
        try:
            for record in self.reader.records(ref):
                self._one(record, already)
                if (
                    self.delivery.pending >= self.batch_size
                    or time.monotonic() - self._last_commit >= self.commit_interval_s
                ):
                    self._commit()
                if stop.is_set():
                    break
            else:
                finished = True
        except SourceFileError as exc:
            self._failed(str(exc))
        finally:
            self._commit()
            self.progress.end_file()
        if finished:
            self.store.put(file_id, FileProgress(relative, tracker.done, True))
            log.info("file done", path=relative, records=tracker.done)
        del self._trackers[file_id]

    def _one(self, record: SourceRecord, already: int) -> None:
        """Route one record to publish, dead letter or skip."""
        self.summary.counts["read"] += 1
        self.progress.advance()
        if record.ordinal < already:
            self.summary.counts["already_done"] += 1
            return
        if self.throttle:
            time.sleep(1.0 / self.throttle)
        data = record.data
        if isinstance(data, Malformed):
            self._dead_letter(record, data.reason)
            return
        try:
            event = self.mapper(record)
        except NoEvent as exc:
            self.delivery.skip(record)
            self._batch_counts["no_event"] += 1
            if exc.kind != "no_event":
                self._not_published(exc)
            return
        except MappingError as exc:
            self._dead_letter(record, str(exc))
            return
        except Exception as exc:  # a mapping bug must not lose the record: it is dead-lettered
            log.error("mapping failed unexpectedly", position=record.position, exc_type=type(exc).__name__)
            self._dead_letter(
                record, f"The record could not be mapped ({type(exc).__name__} in the mapping)."
            )
            return
        try:
            self.delivery.publish(record, event)
        except (SerdeError, ValueError) as exc:
            self._dead_letter(record, str(exc))
            return
        self._batch_counts["published"] += 1

    def _not_published(self, exc: NoEvent) -> None:
        """Count a record read but not published by its kind; log the first of each kind."""
        if exc.kind not in self.summary.kinds and not self._batch_counts[exc.kind]:
            log.info("record not published", kind=exc.kind, reason=str(exc))
        self._batch_counts[exc.kind] += 1

    def _dead_letter(self, record: SourceRecord, reason: str) -> None:
        self.delivery.dead_letter(record, reason)
        self._batch_counts["dead_lettered"] += 1
        log.warning(
            "record dead-lettered",
            source=record.source,
            position=record.position,
            event_id=record.event_id,
            reason=reason,
        )

    def _commit(self) -> None:
        """Commit the open batch, then checkpoint every file it touched.

        The checkpoint each touched file will have once the batch is in goes into the batch's
        own transaction (``sg.checkpoints.v1``), so a connector killed between Kafka's commit and
        the local checkpoint resumes from what Kafka committed instead of sending it again.
        """
        pending: dict[str, list[int]] = {}
        for file_id, ordinal in self.delivery.positions():
            pending.setdefault(file_id, []).append(ordinal)
        for file_id, ordinals in pending.items():
            relative, tracker = self._trackers[file_id]
            self.delivery.checkpoint(file_id, FileProgress(relative, tracker.after(ordinals), False))
        done = self.delivery.commit()
        self._last_commit = time.monotonic()
        touched = set()
        for file_id, ordinal in done:
            self._trackers[file_id][1].ack(ordinal)
            touched.add(file_id)
        for file_id in touched:
            relative, tracker = self._trackers[file_id]
            self.store.put(file_id, FileProgress(relative, tracker.done, False))
        for kind in [k for k in self._batch_counts if k not in COUNT_NAMES]:
            self.summary.kinds[kind] += self._batch_counts.pop(kind)
        self.summary.counts.update(self._batch_counts)
        self._batch_counts.clear()

    def _failed(self, message: str) -> None:
        self.summary.failed_files.append(message)
        log.error("file could not be read", reason=message)
