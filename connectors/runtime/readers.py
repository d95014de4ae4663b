"""Source readers for tabular exports: CSV files and JSON (a document, or one object per line).

A reader turns one file into :class:`SourceRecord` values, numbered from 0 in file order,
the same way on every run (checkpoints and event ids depend on it). A record the reader
cannot parse (a CSV row with the wrong number of columns, a line that is not JSON) is
still yielded, with :class:`Malformed` as its data, so it is dead-lettered with its
position rather than dropped. A file that cannot be read at all raises
:class:`SourceFileError`, and nothing of it is published.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from connectors.exceptions import SourceFileError
from connectors.runtime.records import SourceRecord


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record the reader could not parse, and why (never its values); ``subject`` is the
    child it is about when the reader can tell (a snapshot's ``Fact.subject``), so that child's
    facts are not withdrawn by this return."""

    reason: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file as a reader sees it: where it is, how the connector names it, its identity."""

    path: Path
    connector: str
    source: str
    file_id: str


class Reader(Protocol):
    """Reads one format. ``suffixes`` are the file name endings it reads in a folder."""

    suffixes: tuple[str, ...]

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        """Every record of the file, in order; raises :class:`SourceFileError` if it cannot be read."""
        ...

    def estimate(self, path: Path) -> int:
        """Roughly how many records the file holds (for a progress bar)."""
        ...


def count_lines(path: Path) -> int:
    """The number of lines in a file, counted without decoding it."""
    count = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count


class _LineTap:
    """Feeds lines to ``csv.reader`` and keeps the ones the current row came from."""

    __slots__ = ("lineno", "lines", "source")

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.lines: list[str] = []
        self.lineno = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self.source)
        self.lines.append(line)
        self.lineno += 1
        return line


#: What an undecodable byte becomes when read with ``errors="surrogateescape"``.
_UNREADABLE = re.compile("[\udc80-\udcff]")


class CsvReader:
    """CSV with a header row. Each row becomes a dict of column name to text.

    Positions are ``row N`` counting the header as row 1 (the line where the row starts, as a
    spreadsheet or an editor shows it). A dead letter keeps the header and the row's lines.

    Args:
        delimiter: the field separator.
        encoding: the file's encoding (``utf-8-sig`` accepts UTF-8 with or without a BOM).
        required_columns: columns the header must have (the ones a mapping reads); a file
            without them is not read at all, rather than dead-lettering every row.
    """

    suffixes: tuple[str, ...] = (".csv",)
    content_type = "text/csv"

    def __init__(
        self,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",
        required_columns: frozenset[str] = frozenset(),
    ) -> None:
        self.delimiter = delimiter
        self.encoding = encoding
        self.required_columns = required_columns

    def estimate(self, path: Path) -> int:
        return max(count_lines(path) - 1, 0)

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        with self._opened(ref) as fh:
            yield from self._rows(fh, ref)

    def check(self, ref: FileRef) -> None:
        """Raise :class:`SourceFileError` if :meth:`records` would, without building a record:
        the connector reads a file through once before publishing any of it (all or nothing),
        and building every row's record twice cost a third of a police export's time."""
        with self._opened(ref) as fh:
            rows = csv.reader(fh, delimiter=self.delimiter)
            if self._header(rows, ref) is not None:
                collections.deque(rows, maxlen=0)  # parse every row, keep none

    @contextlib.contextmanager
    def _opened(self, ref: FileRef) -> Iterator[Any]:
        """The file as text; an unreadable encoding or invalid CSV as :class:`SourceFileError`."""
        try:
            # Bytes the encoding cannot read are kept (as surrogates) so that the row holding
            # them becomes a dead letter with its place, and the rest of the file goes through.
            with ref.path.open(encoding=self.encoding, errors="surrogateescape", newline="") as fh:
                yield fh
        except UnicodeDecodeError:
            msg = f"File {ref.source} is not text in the {self.encoding} encoding."
            raise SourceFileError(msg) from None
        except csv.Error as exc:
            msg = f"File {ref.source} is not valid CSV: {exc}."
            raise SourceFileError(msg) from None

    def _header(self, rows: Iterator[list[str]], ref: FileRef) -> list[str] | None:
        """The header row's column names (None for an empty file); raises
        :class:`SourceFileError` for a header the file cannot be read by."""
        try:
            header = [name.strip() for name in next(rows)]
        except StopIteration:
            return None
        if any(_UNREADABLE.search(name) for name in header):
            msg = f"File {ref.source} is not text in the {self.encoding} encoding (its header row)."
            raise SourceFileError(msg)
        if len(set(header)) != len(header) or not all(header):
            msg = f"File {ref.source} has an empty or repeated column name in its header row."
            raise SourceFileError(msg)
        missing = self.required_columns - set(header)
        if missing:
            names = ", ".join(sorted(missing))
            msg = f"File {ref.source} lacks the column(s) {names} that the mapping file reads."
            raise SourceFileError(msg)
        return header

    def _rows(self, fh: Any, ref: FileRef) -> Iterator[SourceRecord]:
        tap = _LineTap(iter(fh))
        rows = csv.reader(tap, delimiter=self.delimiter)
        header = self._header(rows, ref)
        if header is None:
            return
        encoding = self.encoding.replace("-sig", "")
        header_bytes = "".join(tap.lines).encode(encoding)
        width = len(header)
        ordinal = 0
        tap.lines.clear()
        start = tap.lineno + 1
        for values in rows:
            raw = "".join(tap.lines)
            tap.lines.clear()
            line = start
            start = tap.lineno + 1
            if not values:
                continue  # a blank line is not a record
            # (the row's text holds every value: only a row with an unreadable byte is searched by value)
            bad = (
                next((i for i, value in enumerate(values) if _UNREADABLE.search(value)), None)
                if _UNREADABLE.search(raw)
                else None
            )
            data: Any
            if bad is not None:
                column = header[bad] if bad < width else f"field {bad + 1}"
                data = Malformed(f"The row is not text in the {encoding} encoding (column {column}).")
            elif len(values) == width:
                data = dict(zip(header, values, strict=True))
            else:
                data = Malformed(f"The row has {len(values)} fields but the header has {width}.")
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                f"row {line}",
                data,
                raw.encode(encoding, "surrogateescape"),
                "text/csv",
                header=header_bytes,
            )
            ordinal += 1


def _at_path(document: Any, dotted: str | None, source: str) -> list[Any]:
    if dotted is None:
        return document if isinstance(document, list) else [document]
    node = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            msg = f"File {source} has no {dotted!r} member holding the records."
            raise SourceFileError(msg)
        node = node[part]
    if not isinstance(node, list):
        msg = f"File {source}: member {dotted!r} is not a list of records."
        raise SourceFileError(msg)
    return node


class JsonReader:
    """JSON exports: ``.json`` documents (an array, one object, or an array at ``records_path``)
    and ``.ndjson``/``.jsonl`` files with one object per line.

    Positions are ``record N`` (1-based) in a document and ``line N`` in a line-delimited file.

    Args:
        records_path: dotted path to the array of records inside a document, if not top level.
    """

    suffixes: tuple[str, ...] = (".json", ".ndjson", ".jsonl")
    content_type = "application/json"

    def __init__(self, records_path: str | None = None) -> None:
        self.records_path = records_path

    def estimate(self, path: Path) -> int:
        return count_lines(path) if _line_delimited(path) else 0

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        if _line_delimited(ref.path):
            yield from _ndjson(ref, "application/json")
            return
        try:
            document = json.loads(ref.path.read_bytes())
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            msg = f"File {ref.source} is not a valid JSON document."
            raise SourceFileError(msg) from None
        for ordinal, item in enumerate(_at_path(document, self.records_path, ref.source)):
            data = item if isinstance(item, dict) else Malformed("The record is not a JSON object.")
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                f"record {ordinal + 1}",
                data,
                None,
                "application/json",
            )


def _line_delimited(path: Path) -> bool:
    return path.name.lower().endswith((".ndjson", ".jsonl"))


def _ndjson(ref: FileRef, content_type: str) -> Iterator[SourceRecord]:
    """One JSON object per line; blank lines are skipped, bad lines become :class:`Malformed`."""
    ordinal = 0
    with ref.path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data: Any = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
                data = Malformed("The line is not valid JSON.")
            if not isinstance(data, (dict, Malformed)):
                data = Malformed("The line is not a JSON object.")
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                f"line {lineno}",
                data,
                line.rstrip(b"\r\n"),
                content_type,
            )
            ordinal += 1


def ndjson_lines(ref: FileRef) -> Iterator[tuple[int, int, bytes]]:
    """``(ordinal, line number, bytes)`` of each non-blank line, for readers that parse lines themselves."""
    ordinal = 0
    with ref.path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield ordinal, lineno, line.rstrip(b"\r\n")
                ordinal += 1


#: Encodings a table export is tried in when it has no byte order mark: UTF-8, then Windows-1252
#: (Excel's "CSV" on an English Windows).
TABLE_ENCODINGS = ("utf-8", "cp1252")
_DELIMITERS = (",", ";", "\t", "|")


def decode_table(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """``(text, encoding)`` of a table export: ``encoding`` when given, else by its byte order
    mark (UTF-8, UTF-16 as Excel's "Unicode text" writes it), else UTF-8, else Windows-1252.

    Raises :class:`SourceFileError` in one sentence when none of them reads it.
    """
    if encoding is None:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
        elif data.startswith(b"\xef\xbb\xbf"):
            encoding = "utf-8-sig"
    tried = (encoding,) if encoding else TABLE_ENCODINGS
    for name in tried:
        try:
            return data.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    msg = f"File {source} is not text in {' or '.join(tried)}; give its encoding with --encoding."
    raise SourceFileError(msg)


def sniff_delimiter(header_line: str, delimiter: str | None = None) -> str:
    """The field separator of a table whose header row is ``header_line``: ``delimiter`` when
    given, else whichever of comma, semicolon, tab and bar the header holds most of (comma on a tie)."""
    if delimiter:
        return delimiter
    return max(_DELIMITERS, key=lambda d: (header_line.count(d), d == ","))
