"""SSDA903 (children looked after) extracts, read as periods of care and missing episodes.

A full extract is a folder of CSV tables, each recognised by its columns (:data:`TABLES`):

* *episodes* (``CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,...``): a period of care
  starts at a child's first episode (``DECOM``) and ends at the ``DEC`` of an episode whose
  ``REC`` ends care (any reason other than ``X1``, "episode ends, care continues"); the next
  episode after that starts a new period. Facts ``lac_start`` and ``lac_end``.
* *missing* (``CHILD,DOB,MISSING,MIS_START,MIS_END``): each episode of missing (``M``) or
  away without authorisation (``A``) from the placement. Facts ``missing_start`` and
  ``missing_end``.
* *header* (``CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB``): yields nothing itself; the other
  tables read it for each child's UPN and date of birth.
* uasc, reviews, oc2, oc3, ad1, placed_for_adoption, previous_permanence, sw_episodes and
  DoLo are recognised and skipped (:class:`SkippedFile`: counted by table, checkpointed).

A child is held back, every row of it dead-lettered with the reason, when one of its rows
cannot be read (a wrong number of fields, ``DECOM`` or ``DEC`` not a date) or the header
table has two different rows for it: a period built around a missing or doubtful row could
be wrong, so it waits for a corrected extract. Overlapping episodes are published with a
data-quality finding naming the rows. Encoding (UTF-8, UTF-16, Windows-1252) and delimiter
(comma, semicolon, tab, bar) are detected unless given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from connectors.exceptions import MappingError, SkippedFile, SourceFileError, UnsupportedFile
from connectors.local_authority import xmlstream
from connectors.local_authority.ssda903_periods import EPISODE_COLUMNS as EPISODE_COLUMNS
from connectors.local_authority.ssda903_periods import HEADER_COLUMNS as HEADER_COLUMNS
from connectors.local_authority.ssda903_periods import Episode, Item, in_scope, periods
from connectors.local_authority.ssda903_xml import xml_export_records
from connectors.runtime.readers import FileRef, Malformed, count_lines, decode_table, sniff_delimiter
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import Fact, date_key, parse_date

MISSING_COLUMNS = ("CHILD", "DOB", "MISSING", "MIS_START", "MIS_END")
#: Each table of a full extract and the columns that identify it, in the order they are tried.
TABLES: tuple[tuple[str, frozenset[str]], ...] = (
    ("episodes", frozenset({"CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "DEC", "REC"})),
    ("missing", frozenset({"CHILD", "MISSING", "MIS_START"})),
    ("header", frozenset({"CHILD", "SEX", "DOB", "ETHNIC", "UPN"})),
    ("uasc", frozenset({"CHILD", "DUC"})),
    ("reviews", frozenset({"CHILD", "REVIEW", "REVIEW_CODE"})),
    ("oc2", frozenset({"CHILD", "CONVICTED", "HEALTH_CHECK"})),
    ("oc3", frozenset({"CHILD", "IN_TOUCH", "ACTIV", "ACCOM"})),
    ("ad1", frozenset({"CHILD", "DATE_INT", "DATE_MATCH"})),
    ("placed_for_adoption", frozenset({"CHILD", "DATE_PLACED"})),
    ("previous_permanence", frozenset({"CHILD", "PREV_PERM"})),
    ("sw_episodes", frozenset({"CHILD", "SW_ID", "SW_DECOM"})),
    ("dolo", frozenset({"CHILD", "DOLO_START"})),
)
MAPPED = ("episodes", "missing")

Rows = list[tuple[int, list[str]]]


def table_kind(header: list[str]) -> str | None:
    """Which SSDA903 table a header row belongs to, or None."""
    columns = set(header)
    for kind, needed in TABLES:
        if needed <= columns:
            return kind
    return None


def read_table(
    path: Path, source: str, encoding: str | None = None, delimiter: str | None = None
) -> tuple[list[str], Rows, str]:
    """``(header, [(line, values)], delimiter)`` of one table, encoding and delimiter detected."""
    try:
        data = path.read_bytes()
    except OSError:
        raise SourceFileError(f"File {source} could not be read.") from None
    text, _ = decode_table(data, source, encoding)
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    sep = sniff_delimiter(first, delimiter)
    try:
        rows = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=sep)
        header = [h.strip().upper() for h in next(rows, [])]
        # a row of blank values is no row (the joined text is blank exactly when every value is)
        body = [(rows.line_num, values) for values in rows if "".join(values).strip()]
    except csv.Error as exc:
        raise SourceFileError(f"File {source} is not valid CSV: {exc}.") from None
    return header, body, sep


def _line(header: list[str], values: list[str], sep: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", delimiter=sep)
    writer.writerow(header)
    writer.writerow(values)
    return out.getvalue().encode()


def _child_of(header: list[str], values: list[str]) -> str | None:
    """The CHILD of a row that could not be read, when it has one."""
    at = header.index("CHILD")
    return (values[at].strip() or None) if len(values) > at else None


def _is_xml(path: Path) -> bool:
    return path.name.lower().endswith(".xml")


class Ssda903Reader:
    """Reads an SSDA903 extract's tables (with the header table beside them) as facts.

    Args:
        la_code: the authority's code (the extract does not carry it).
        period: the collection year the extract is the full return for (``--period``); without
            it a table withdraws nothing that it no longer has (:mod:`connectors.runtime.withdrawals`).
        header_table: the header table, if not a ``.csv`` in the same folder.
        encoding: the tables' encoding (default: detected).
        delimiter: the tables' field separator (default: detected).
    """

    suffixes: tuple[str, ...] = (".csv", ".xml")
    content_type = "text/csv"

    def __init__(
        self,
        la_code: str,
        header_table: Path | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        period: str | None = None,
    ) -> None:
        self.la_code = la_code
        self.period = period
        self.header_table = header_table
        self.encoding = encoding
        self.delimiter = delimiter

    def estimate(self, path: Path) -> int:
        return max(count_lines(path) - 1, 0)

    def check(self, ref: FileRef) -> None:
        """Raises :class:`UnsupportedFile` for a file that is no SSDA903 table,
        :class:`SkippedFile` for a table that is not published, :class:`SourceFileError` for
        one that cannot be read."""
        if _is_xml(ref.path):
            xmlstream.check(ref.path, ref.source, "CHILD", "HEADER")
            return
        header, _, _ = read_table(ref.path, ref.source, self.encoding, self.delimiter)
        kind = table_kind(header)
        if kind is None:
            msg = f"File {ref.source} is not an SSDA903 table (by its columns)."
            raise UnsupportedFile(msg)
        if kind not in MAPPED:
            raise SkippedFile(kind, f"File {ref.source} is the SSDA903 {kind} table, which is not published.")

    def _children(self, folder: Path) -> tuple[dict[str, dict[str, str]], set[str]]:
        """Each child's header row, and the children the header table has two different rows for."""
        candidates = [self.header_table] if self.header_table else sorted(folder.glob("*.csv"))
        candidates = [p for p in candidates if p is None or not _is_xml(p)]
        for path in candidates:
            if path is None:
                continue
            try:
                header, body, _ = read_table(path, path.name, self.encoding, self.delimiter)
            except SourceFileError:
                continue
            if table_kind(header) != "header":
                continue
            people: dict[str, dict[str, str]] = {}
            doubtful: set[str] = set()
            at = header.index("CHILD")
            for _, values in body:
                if len(values) != len(header):
                    if len(values) > at:
                        doubtful.add(values[at].strip())
                    continue
                row = {h: v.strip() for h, v in zip(header, values, strict=True)}
                seen = people.setdefault(row["CHILD"], row)
                if seen != row:
                    doubtful.add(row["CHILD"])
            return people, doubtful
        return {}, set()

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        if _is_xml(ref.path):
            yield from xml_export_records(self.la_code, ref, self._scope("episodes"))
            return
        header, body, sep = read_table(ref.path, ref.source, self.encoding, self.delimiter)
        kind = table_kind(header)
        if kind not in MAPPED:
            return
        people, doubtful = self._children(ref.path.parent)
        items = self._missing(header, body, sep, people) if kind == "missing" else []
        if kind == "episodes":
            items = self._episodes(header, body, sep, people)
        self._hold_back(items, header, body, sep, doubtful)
        items.sort(key=lambda item: (item.line, item.order))
        scope = self._scope(str(kind))
        for ordinal, item in enumerate(items):
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                item.position,
                in_scope(item.data, self.la_code, scope),
                item.raw,
                "text/csv",
            )

    def _scope(self, table: str) -> str | None:
        """The scope of one table of the extract: ``ssda903|<table>|<LA>|<period>``, None without ``--period``."""
        return f"ssda903|{table}|{self.la_code}|{self.period}" if self.period else None

    # -- held-back children ----------------------------------------------------------------------
    @staticmethod
    def _hold_back(items: list[Item], header: list[str], body: Rows, sep: str, doubtful: set[str]) -> None:
        """Replace every record of a child with an unreadable row, or a doubtful header row, by a
        dead letter of each of its rows saying why (so nothing of it is published, nor lost)."""
        at = header.index("CHILD")
        why: dict[str, str] = {}
        for line, values in body:
            child_id = values[at].strip() if len(values) > at else ""
            if len(values) != len(header) and child_id:
                why.setdefault(
                    child_id, f"row {line} has {len(values)} fields but the header has {len(header)}"
                )
        for child_id in doubtful:
            why.setdefault(child_id, "the header table has two different rows for this CHILD")
        bad_rows = {line for line, values in body if len(values) != len(header)}
        for item in items:
            if isinstance(item.data, Malformed):
                continue
            child_id = item.data.fields.get("child")
            if child_id in why:
                item.data = Malformed(
                    f"Held back: {why[child_id]}; this child waits for a corrected extract.", child_id
                )
        kept = {item.line for item in items}
        for line, values in body:
            child_id = values[at].strip() if len(values) > at else ""
            if line in kept or line in bad_rows:
                continue
            if child_id in why:
                items.append(
                    Item(
                        line,
                        0,
                        f"row {line}",
                        Malformed(
                            f"Held back: {why[child_id]}; this child waits for a corrected extract.", child_id
                        ),
                        _line(header, values, sep),
                    )
                )

    # -- episodes -> periods of care ---------------------------------------------------------------
    def _episodes(
        self, header: list[str], body: Rows, sep: str, people: dict[str, dict[str, str]]
    ) -> list[Item]:
        by_child: dict[str, list[Episode]] = {}
        items: list[Item] = []
        broken: dict[str, str] = {}
        for line, values in body:
            # (a row's own bytes only for a dead letter: a period of care writes its rows when asked)
            if len(values) != len(header):
                reason = f"The row has {len(values)} fields but the header has {len(header)}."
                malformed = Malformed(reason, _child_of(header, values))
                items.append(Item(line, 0, f"row {line}", malformed, _line(header, values, sep)))
                continue
            row = {h: v.strip() for h, v in zip(header, values, strict=True)}
            try:
                if not row["CHILD"]:
                    raise MappingError("CHILD is missing.")
                start = parse_date(row["DECOM"], "DECOM", required=True)
                end = parse_date(row["DEC"], "DEC")
            except MappingError as exc:
                malformed = Malformed(str(exc), row["CHILD"] or None)
                items.append(Item(line, 0, f"row {line}", malformed, _line(header, values, sep)))
                if row["CHILD"]:
                    broken.setdefault(row["CHILD"], f"row {line}: {exc}")
                continue
            by_child.setdefault(row["CHILD"], []).append((start, end, line, row))
        for child_id, episodes in by_child.items():
            if child_id in broken:
                reason = f"Held back: {broken[child_id]} This child waits for a corrected extract."
                items += [
                    Item(
                        e[2],
                        0,
                        f"row {e[2]}",
                        Malformed(reason, child_id),
                        _line(header, [e[3][h] for h in header], sep),
                    )
                    for e in episodes
                ]
                continue
            items += periods(
                self.la_code,
                child_id,
                episodes,
                people,
                lambda line: f"row {line}",
                lambda row: _line(header, [row[h] for h in header], sep),
            )
        return items

    # -- missing from placement ----------------------------------------------------------------------
    def _missing(
        self, header: list[str], body: Rows, sep: str, people: dict[str, dict[str, str]]
    ) -> list[Item]:
        items: list[Item] = []
        for line, values in body:
            raw = _line(header, values, sep)
            if len(values) != len(header):
                reason = f"The row has {len(values)} fields but the header has {len(header)}."
                items.append(Item(line, 0, f"row {line}", Malformed(reason, _child_of(header, values)), raw))
                continue
            row = {h: v.strip() for h, v in zip(header, values, strict=True)}
            if not row["CHILD"]:
                items.append(Item(line, 0, f"row {line}", Malformed("CHILD is missing."), raw))
                continue
            head = people.get(row["CHILD"]) or {}
            base = {
                "la_code": self.la_code,
                "child": row["CHILD"],
                "header": {**head, "DOB": head.get("DOB") or row.get("DOB", "")},
                "MISSING": row["MISSING"],
                "start": row["MIS_START"],
                "end": row.get("MIS_END", ""),
            }
            episode = f"{self.la_code}|{row['CHILD']}|{date_key(row['MIS_START'])}"
            items.append(
                Item(
                    line,
                    1,
                    f"row {line} (missing starts)",
                    Fact("missing_start", f"mis-start|{episode}", base),
                    raw,
                )
            )
            if row.get("MIS_END"):
                items.append(
                    Item(
                        line,
                        2,
                        f"row {line} (missing ends)",
                        Fact("missing_end", f"mis-end|{episode}", base),
                        raw,
                    )
                )
        return items
