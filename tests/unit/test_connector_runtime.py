"""The connector runtime's pure parts: checkpoints, readers, drop folders, the file loop (with an
in-memory delivery standing in for the transactional one), and logs free of personal data."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.exceptions import ConnectorError, SourceFileError
from connectors.police import PoliceMapper, load_mapping, reader_for
from connectors.police import synthetic as syn
from connectors.runtime.checkpoint import CheckpointStore, ContiguousTracker, FileProgress, validate_name
from connectors.runtime.event_builder import Finding
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.progress import Progress
from connectors.runtime.readers import CsvReader, FileRef, JsonReader, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.sources import DropFolder, file_identity, list_files

MAPPING = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "police-domestic-abuse.yaml"


def test_tracker_moves_only_over_contiguous_acknowledgements() -> None:
    tracker = ContiguousTracker(start=10)
    for ordinal in (12, 11, 14):
        tracker.ack(ordinal)
    assert tracker.done == 10 and tracker.pending == 3
    tracker.ack(10)
    assert tracker.done == 13 and tracker.pending == 1
    tracker.ack(13)
    tracker.ack(3)  # already done: ignored
    assert tracker.done == 15 and tracker.pending == 0


def test_checkpoint_store_is_atomic_and_locked(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "police-csv")
    store.lock()
    try:
        store.put("abc", FileProgress("x.csv", 42, False))
        assert store.get("abc") == FileProgress("x.csv", 42, False) and store.get("nope") is None
        assert not list(store.files_dir.glob("*.tmp"))
        other = CheckpointStore(tmp_path / "police-csv")
        with pytest.raises(ConnectorError, match="Another process is already running the connector"):
            other.lock()
    finally:
        store.unlock()
    (store.files_dir / "bad.json").write_text("{torn")
    with pytest.raises(ConnectorError, match="is unreadable; move it aside"):
        store.get("bad")


@pytest.mark.parametrize("name", ["../etc", "", "a b", "x" * 101])
def test_connector_names_are_checked(name: str) -> None:
    with pytest.raises(ConnectorError):
        validate_name(name)


def test_csv_positions_count_lines_and_blank_lines_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('a,b\n1,2\n\n"multi\nline",3\n4,5,6\n7,8\n')
    records = list(CsvReader().records(FileRef(path, "c", "x.csv", "f")))
    assert [(r.ordinal, r.position) for r in records] == [
        (0, "row 2"),
        (1, "row 4"),
        (2, "row 6"),
        (3, "row 7"),
    ]
    assert records[1].data == {"a": "multi\nline", "b": "3"}
    assert (
        isinstance(records[2].data, Malformed)
        and records[2].data.reason == "The row has 3 fields but the header has 2."
    )
    assert records[1].payload() == b'a,b\n"multi\nline",3\n'


@pytest.mark.parametrize(
    ("content", "required", "refused"),
    [
        (b"a,b\n1,2\n", frozenset(), False),  # readable
        (b"a,b\n1,2,3\n\xff,4\n", frozenset(), False),  # bad rows are dead letters, not a bad file
        (b"", frozenset(), False),  # empty
        (b"a,a\n1,2\n", frozenset(), True),  # a repeated column
        (b"a,\xff\n1,2\n", frozenset(), True),  # an unreadable header
        (b"a,b\n1,2\n", frozenset({"c"}), True),  # a column the mapping reads is missing
        (b"a,b\n" + b"x" * 200_000 + b",2\n", frozenset(), True),  # a field past csv's limit
    ],
)
def test_csv_check_refuses_exactly_the_files_reading_refuses(
    tmp_path: Path, content: bytes, required: frozenset[str], refused: bool
) -> None:
    """The connector checks a whole file before publishing any of it; the check, which builds no
    record, must refuse a file exactly when reading it would, with the same reason."""
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    reader, ref = CsvReader(required_columns=required), FileRef(path, "c", "x.csv", "f")

    def reason(action: Callable[[], object]) -> str | None:
        try:
            action()
        except SourceFileError as exc:
            return str(exc)
        return None

    read = reason(lambda: list(reader.records(ref)))
    assert reason(lambda: reader.check(ref)) == read
    assert (read is not None) == refused


def test_a_csv_row_with_an_unreadable_byte_names_its_column(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,\xfe2\n3,4\n")
    records = list(CsvReader().records(FileRef(path, "c", "x.csv", "f")))
    assert isinstance(records[0].data, Malformed)
    assert records[0].data.reason == "The row is not text in the utf-8 encoding (column b)."
    assert records[1].data == {"a": "3", "b": "4"}


def test_json_reader_documents_and_lines(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"data": {"rows": [{"x": 1}, 2]}}')
    (tmp_path / "b.ndjson").write_text('{"x": 1}\n\n[1]\n{bad\n')
    doc = list(JsonReader("data.rows").records(FileRef(tmp_path / "a.json", "c", "a.json", "f")))
    assert [r.position for r in doc] == ["record 1", "record 2"] and isinstance(doc[1].data, Malformed)
    lines = list(JsonReader().records(FileRef(tmp_path / "b.ndjson", "c", "b.ndjson", "f")))
    assert [r.position for r in lines] == ["line 1", "line 3", "line 4"]
    assert [type(r.data).__name__ for r in lines] == ["dict", "Malformed", "Malformed"]


def test_file_identity_and_listing(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("x\n1\n")
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / ".hidden.csv").write_text("x\n")
    (tmp_path / "c.csv.part").write_text("x\n")
    (tmp_path / "d.txt").write_text("x\n")
    assert [p.name for p in list_files(tmp_path, (".csv",))] == ["a.csv", "b.csv"]
    assert file_identity(tmp_path / "a.csv") == file_identity(tmp_path / "b.csv")
    with pytest.raises(ConnectorError, match="is neither a file nor a folder"):
        list_files(tmp_path / "missing", (".csv",))


def test_drop_folder_waits_for_files_to_settle(tmp_path: Path) -> None:
    drop = DropFolder(tmp_path, (".csv",), settle_s=0.2)
    path = tmp_path / "a.csv"
    path.write_text("x\n")
    assert drop.poll() == []
    time.sleep(0.25)
    assert drop.poll() == [path]
    assert drop.poll() == []  # reported once
    path.write_text("x\n2\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert drop.poll() == []
    time.sleep(0.25)
    assert drop.poll() == [path]  # changed content is a new file


class RecordingDelivery:
    """An in-memory delivery: what the loop would publish, committed batch by batch."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.published: list[tuple[str, str]] = []
        self.dead: list[tuple[str, str]] = []
        self.findings: list[tuple[str, str]] = []
        self.batch: list[tuple[str, int]] = []
        self.commits = 0
        self.fail_after = fail_after

    @property
    def pending(self) -> int:
        return len(self.batch)

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        self.published.append((record.position, event["event_id"]))
        self.batch.append((record.file_id, record.ordinal))

    def dead_letter(self, record: SourceRecord, reason: str) -> None:
        self.dead.append((record.position, reason))
        self.batch.append((record.file_id, record.ordinal))

    def data_quality(self, record: SourceRecord, findings: list[Finding], event_id: str) -> None:
        self.findings += [(record.position, f.sentence()) for f in findings]

    def skip(self, record: SourceRecord) -> None:
        self.batch.append((record.file_id, record.ordinal))

    def positions(self) -> list[tuple[str, int]]:
        return []

    def checkpoint(self, file_id: str, progress: Any) -> None:
        pass

    def commit(self) -> list[tuple[str, int]]:
        if self.fail_after is not None and self.commits >= self.fail_after and self.batch:
            msg = "Kafka did not accept a batch."
            raise ConnectorError(msg)
        self.commits += 1
        done, self.batch = self.batch, []
        return done

    def close(self) -> None:
        pass


def run(
    tmp_path: Path,
    path: Path,
    delivery: RecordingDelivery,
    stop: threading.Event | None = None,
    **options: Any,
) -> FileConnector:
    mapping = load_mapping(MAPPING)
    store = CheckpointStore(tmp_path / "state" / "police-csv")
    runner = FileConnector(
        "police-csv", reader_for(mapping, "csv"), PoliceMapper(mapping), delivery, store, **options
    )
    runner.run_batch(path, stop or threading.Event())
    return runner


def test_loop_publishes_dead_letters_and_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(50, random.Random(1), bad=[3, 30])
    path = syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows)
    first = RecordingDelivery(fail_after=2)
    with pytest.raises(ConnectorError):
        run(tmp_path, path, first, batch_size=10)
    assert first.commits == 2  # 20 records durable; the third batch failed and was not checkpointed
    second = RecordingDelivery()
    runner = run(tmp_path, path, second, batch_size=10)
    assert runner.summary.counts == Counter(
        {"read": 50, "already_done": 20, "published": 29, "dead_lettered": 1}
    )
    assert [p for p, _ in second.dead] == ["row 32"]
    assert {p for p, _ in first.published[:18]}.isdisjoint({p for p, _ in second.published})
    third = RecordingDelivery()
    assert run(tmp_path, path, third).summary.line() == (
        "1 file(s): 50 read, 0 published, 0 dead-lettered, 50 skipped as already done, "
        "0 with nothing to publish."
    )


def test_stop_commits_what_was_read_and_the_next_run_resumes(tmp_path: Path) -> None:
    path = syn.write_csv(
        tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, syn.domestic_abuse_rows(40, random.Random(2))
    )
    stop = threading.Event()
    delivery = RecordingDelivery()

    class StopAfter(PoliceMapper):
        def __call__(self, record: SourceRecord) -> dict[str, Any]:
            if record.ordinal == 14:
                stop.set()
            return super().__call__(record)

    mapping = load_mapping(MAPPING)
    store = CheckpointStore(tmp_path / "state" / "police-csv")
    runner = FileConnector("police-csv", reader_for(mapping, "csv"), StopAfter(mapping), delivery, store)
    summary = runner.run_batch(path, stop)
    assert summary.stopped and summary.counts["published"] == 15 and len(delivery.published) == 15
    rest = run(tmp_path, path, RecordingDelivery())
    assert rest.summary.counts["already_done"] == 15 and rest.summary.counts["published"] == 25


def test_a_dirty_file_logs_a_line_per_reason_not_per_row(tmp_path: Path) -> None:
    """A return with many bad rows: the first row of each reason is logged with its position,
    the rest are counted by reason in their batch's line, and every row is still accounted for."""
    bad = list(range(0, 60, 2))
    rows = syn.domestic_abuse_rows(60, random.Random(5), bad=bad)
    path = syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows)
    with capture_logs() as logs:
        summary = run(tmp_path, path, RecordingDelivery()).summary
    reasons = summary.dead_letter_reasons
    assert summary.counts["dead_lettered"] == len(bad) == sum(reasons.values())
    one_by_one = [e for e in logs if e["event"] == "record dead-lettered"]
    assert sorted(e["reason"] for e in one_by_one) == sorted(reasons)
    again: Counter[str] = Counter()
    for entry in logs:
        if entry["event"] == "more records dead-lettered":
            again[entry["reason"]] += entry["count"]
    assert again == Counter({reason: n - 1 for reason, n in reasons.items() if n > 1})


def test_logs_carry_no_personal_data(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(12, random.Random(3), bad=[0, 1, 2, 5])
    path = syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows)
    with capture_logs() as logs:
        run(tmp_path, path, RecordingDelivery())
    assert any(entry["event"] == "record dead-lettered" for entry in logs)
    personal = {
        v
        for row in rows
        for k, v in row.items()
        if v
        and k
        in (
            "ChildNHSNumber",
            "ChildForename",
            "ChildSurname",
            "ChildDOB",
            "AddressLine1",
            "Postcode",
            "SuspectForename",
            "SuspectSurname",
            "OfficerSummary",
            "ChildPersonRef",
        )
    }
    text = repr(logs)
    assert not [value for value in personal if value in text]


def test_progress_bar_and_stats_lines() -> None:
    counts: Counter[str] = Counter(read=3)
    bar = Progress(counts, interactive=True)
    bar.start_file("x.csv", 600)
    for _ in range(600):
        bar.advance()
    bar.end_file()
    lines = Progress(counts, interactive=False, interval_s=0.0)
    with capture_logs() as logs:
        lines.start_file("x.csv", 3)
        lines.advance()
        lines.tick()
    assert [e["event"] for e in logs] == ["file started", "connector progress", "connector progress"]
    assert logs[1]["counts"]["read"] == 3
