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

All or nothing per file: before a file's first record is published, the whole file is read
once (the reader's ``check``, or its records, discarded), so a file that fails to parse
part-way (a truncated XML return) publishes nothing of itself. It is dead-lettered once, as
a whole, with the reason, and checkpointed so that it is not retried; its fixed version is a
new file (a file's identity is its content) and is read in full. A file the connector does
not read (:class:`UnsupportedFile`) is counted and named in the summary; a table it
recognises but does not publish (:class:`SkippedFile`) is counted by table and checkpointed.

A field that failed its check is withheld by the mapping (see
:mod:`connectors.runtime.event_builder`): the event is published without it and a
data-quality finding per field goes to the dead-letter topic in the same transaction.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from broker import tracing
from broker.exceptions import SerdeError
from broker.logs import get_logger
from connectors.exceptions import (
    MappingError,
    NoEvent,
    SkippedFile,
    SourceFileError,
    UnsupportedFile,
    WrongSource,
)
from connectors.runtime.checkpoint import ContiguousTracker, FileProgress
from connectors.runtime.delivery import MAX_DEAD_LETTER_PAYLOAD
from connectors.runtime.event_builder import take_findings
from connectors.runtime.needs import Checkpoints, Delivery
from connectors.runtime.progress import COUNT_NAMES, Progress
from connectors.runtime.readers import FileRef, Malformed, Reader
from connectors.runtime.records import MapRecord, SourceRecord
from connectors.runtime.repeats import DEAD_LETTERED_AGAIN, WITHHELD_AGAIN, Repeats
from connectors.runtime.sources import DropFolder, file_identity, list_files, unsupported_files
from connectors.runtime.summary import Summary

#: Where a dead letter of a whole file points.
WHOLE_FILE = "whole file"
#: A batch count of corrections published, by kind (``correction:AMENDED``).
CORRECTION = "correction:"

log = get_logger("connectors.pipeline")


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
        store: Checkpoints,
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
        self._repeats = Repeats()  # a line for the first record of each reason, then counts
        self._trackers: dict[str, tuple[str, ContiguousTracker]] = {}
        self._last_commit = time.monotonic()

    # -- modes -----------------------------------------------------------------------------
    def run_batch(self, source: Path, stop: threading.Event) -> Summary:
        """Read a file, or every matching file in a folder, then return the summary."""
        root = source if source.is_dir() else source.parent
        for path in unsupported_files(source, self.reader.suffixes):
            self._unsupported(path.name, f"File {path.name} is not a format this connector reads.")
        for path in list_files(source, self.reader.suffixes):
            if stop.is_set():
                break
            self._run_file(path, root, stop)
        return self._finish(stop)

    def run_watch(
        self,
        folder: Path,
        stop: threading.Event,
        poll_s: float = 2.0,
        settle_s: float = 1.0,
        beat: Callable[[], None] = lambda: None,
    ) -> Summary:
        """Follow a drop folder, reading each new file once it has settled, until ``stop``;
        ``beat`` is called at every look (a probe's liveness)."""
        drop = DropFolder(folder, self.reader.suffixes, settle_s)
        log.info("watching drop folder", path=str(folder))
        named: set[str] = set()
        while not stop.is_set():
            beat()
            for path in unsupported_files(folder, self.reader.suffixes):
                if path.name not in named:  # logged once per process, never silently ignored
                    named.add(path.name)
                    self._unsupported(path.name, f"File {path.name} is not a format this connector reads.")
            for path in drop.poll():
                if stop.is_set():
                    break
                self._run_file(path, folder, stop)
            self.progress.tick()
            stop.wait(poll_s)
        return self._finish(stop)

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
        if saved is not None and saved.complete:
            self.summary.files += 1
            self.summary.counts["read"] += saved.done
            self.summary.counts["already_done"] += saved.done
            log.info("file already done", path=relative, records=saved.done)
            return
        already = saved.done if saved else 0
        ref = FileRef(path, self.name, relative, file_id)
        if not already:
            # 1. all or nothing: the whole file must read before any of it is published
            problem = self._check(ref)
            if isinstance(problem, UnsupportedFile):
                self._unsupported(relative, str(problem))
                return
            self.summary.files += 1
            if isinstance(problem, WrongSource):  # the settings are wrong, not the file
                self._failed(str(problem))
                return
            if isinstance(problem, SkippedFile):
                self.summary.skipped_tables[problem.kind] += 1
                self.store.put(file_id, FileProgress(relative, 0, True))
                log.info("file skipped", path=relative, kind=problem.kind)
                return
            if problem is not None:
                self._reject_file(ref, str(problem))
                return
        else:
            self.summary.files += 1
        tracker = ContiguousTracker(already)
        self._trackers[file_id] = (relative, tracker)
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
        except SourceFileError as exc:  # the file changed under us since the check
            self._failed(str(exc))
        finally:
            self._commit()
            self.progress.end_file()
        if finished:
            self.store.put(file_id, FileProgress(relative, tracker.done, True))
            log.info("file done", path=relative, records=tracker.done)
        del self._trackers[file_id]

    def _check(self, ref: FileRef) -> SourceFileError | None:
        """Why the file cannot be read in full, or None: the reader's ``check`` when it has one,
        else every record read and discarded."""
        check = getattr(self.reader, "check", None)
        try:
            if check is not None:
                check(ref)
            else:
                for _ in self.reader.records(ref):
                    pass
        except SourceFileError as exc:
            return exc
        return None

    def _reject_file(self, ref: FileRef, reason: str) -> None:
        """Dead-letter a file that cannot be read in full, once, as a whole; nothing of it is published."""
        size = ref.path.stat().st_size
        raw = ref.path.read_bytes() if size <= MAX_DEAD_LETTER_PAYLOAD else b""
        if not raw and size:
            reason = f"{reason} (The file was too large to keep in the dead letter.)"
        record = SourceRecord(
            self.name,
            ref.source,
            ref.file_id,
            0,
            WHOLE_FILE,
            Malformed(reason),
            raw,
            getattr(self.reader, "content_type", "application/octet-stream"),
        )
        tracker = ContiguousTracker(0)
        self._trackers[ref.file_id] = (ref.source, tracker)
        self.summary.counts["read"] += 1
        self._dead_letter(record, reason)
        self._commit()
        if tracker.done:
            self.store.put(ref.file_id, FileProgress(ref.source, tracker.done, True))
        del self._trackers[ref.file_id]
        self._failed(reason)

    def _one(self, record: SourceRecord, already: int) -> None:
        """Route one record to publish, dead letter or skip (in its ``map`` span when tracing is on)."""
        if tracing.enabled():  # the span's event id costs a digest a record: only when traced
            with tracing.span("map", None, {"sgb.event_id": record.event_id}):
                self._route(record, already)
        else:
            self._route(record, already)

    def _route(self, record: SourceRecord, already: int) -> None:
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
        findings = take_findings(event)
        try:
            self.delivery.publish(record, event)
        except (SerdeError, ValueError) as exc:
            self._dead_letter(record, str(exc))
            return
        self._batch_counts["published"] += 1
        if event.get("correction"):  # counted by kind among the published
            self._batch_counts[CORRECTION + str(event["correction"]["kind"])] += 1
        if findings:
            self.delivery.data_quality(record, findings, str(event["event_id"]))  # its published id
            self._batch_counts["withheld"] += 1
            for finding in findings:
                self.summary.withheld_reasons[finding.sentence()] += 1
            fields = tuple(f.field for f in findings)
            if self._repeats.first(WITHHELD_AGAIN, fields):
                log.warning(
                    "fields withheld",
                    source=record.source,
                    position=record.position,
                    event_id=event["event_id"],
                    withheld_fields=list(fields),
                )

    def _not_published(self, exc: NoEvent) -> None:
        """Count a record read but not published by its kind; log the first of each kind."""
        if exc.kind not in self.summary.kinds and not self._batch_counts[exc.kind]:
            log.info("record not published", kind=exc.kind, reason=str(exc))
        self._batch_counts[exc.kind] += 1

    def _dead_letter(self, record: SourceRecord, reason: str) -> None:
        self.delivery.dead_letter(record, reason)
        self._batch_counts["dead_lettered"] += 1
        self.summary.dead_letter_reasons[reason] += 1
        if self._repeats.first(DEAD_LETTERED_AGAIN, (reason,)):
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
        for kind in [k for k in self._batch_counts if k not in COUNT_NAMES and k != "withheld"]:
            counts = self.summary.corrections if kind.startswith(CORRECTION) else self.summary.kinds
            counts[kind.removeprefix(CORRECTION)] += self._batch_counts.pop(kind)
        self.summary.counts.update(self._batch_counts)
        self._batch_counts.clear()
        self._repeats.log_batch()

    def _unsupported(self, name: str, reason: str) -> None:
        self.summary.unsupported.append(name)
        log.warning("file not read", path=name, reason=reason)

    def _failed(self, message: str) -> None:
        self.summary.failed_files.append(message)
        log.error("file could not be read", reason=message)
