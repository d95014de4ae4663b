"""SSDA903 (children looked after) extracts, read as periods of care.

Two CSV tables in one folder: the *header* table (``CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB``)
and the *episodes* table (``CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,
REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN``). A period of care starts at a child's first
episode (``DECOM``) and ends at the ``DEC`` of an episode whose ``REC`` ends care (any
reason other than ``X1``, "episode ends, care continues"); the next episode after that
starts a new period.

Facts: ``lac_start`` (position: the first episode's row) and ``lac_end`` (the ending
episode's row). An episode the reader cannot place (``DECOM`` or ``DEC`` not a date) is
dead-lettered with its row, and that child's periods wait for a corrected extract, since
a period built around a missing episode could be wrong. The header table itself yields
nothing: the episodes file reads it for each child's UPN and date of birth.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.exceptions import MappingError, SourceFileError
from connectors.runtime.readers import FileRef, Malformed, count_lines
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import Fact, date_key, parse_date

HEADER_COLUMNS = ("CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB")
EPISODE_COLUMNS = (
    "CHILD",
    "DECOM",
    "RNE",
    "LS",
    "CIN",
    "PLACE",
    "PLACE_PROVIDER",
    "DEC",
    "REC",
    "REASON_PLACE_CHANGE",
    "HOME_POST",
    "PL_POST",
    "URN",
)
CONTINUES = "X1"


def _table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.reader(fh)
            header = [h.strip().upper() for h in next(rows, [])]
            body = [(rows.line_num, values) for values in rows if values]
    except UnicodeDecodeError:
        raise SourceFileError(f"File {path.name} is not UTF-8 text.") from None
    except csv.Error as exc:
        raise SourceFileError(f"File {path.name} is not valid CSV: {exc}.") from None
    return header, body


def _kind(header: list[str]) -> str | None:
    if set(EPISODE_COLUMNS) - {"PLACE_PROVIDER", "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"} <= set(
        header
    ):
        return "episodes"
    if {"CHILD", "DOB", "UPN"} <= set(header) and "DECOM" not in header:
        return "header"
    return None


def _line(header: list[str], values: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(values)
    return out.getvalue().encode()


class Ssda903Reader:
    """Reads SSDA903 episodes tables (with the header table beside them) as period-of-care facts.

    Args:
        la_code: the authority's code (the extract does not carry it).
        header_table: the header table, if not a ``.csv`` in the episodes file's folder.
    """

    suffixes: tuple[str, ...] = (".csv",)

    def __init__(self, la_code: str, header_table: Path | None = None) -> None:
        self.la_code = la_code
        self.header_table = header_table

    def estimate(self, path: Path) -> int:
        return max(count_lines(path) - 1, 0)

    def _children(self, folder: Path) -> dict[str, dict[str, str]]:
        candidates = [self.header_table] if self.header_table else sorted(folder.glob("*.csv"))
        for path in candidates:
            if path is None:
                continue
            header, body = _table(path)
            if _kind(header) == "header":
                return {
                    values[header.index("CHILD")].strip(): {
                        h: v.strip() for h, v in zip(header, values, strict=True)
                    }
                    for _, values in body
                    if len(values) == len(header)
                }
        return {}

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        header, body = _table(ref.path)
        kind = _kind(header)
        if kind == "header":
            return
        if kind is None:
            raise SourceFileError(
                f"File {ref.source} is neither an SSDA903 header table nor an episodes table "
                "(by its columns)."
            )
        people = self._children(ref.path.parent)
        by_child: dict[str, list[tuple[Any, Any, int, dict[str, str]]]] = {}
        items: list[tuple[int, int, str, Any, bytes]] = []
        broken: set[str] = set()
        for line, values in body:
            raw = _line(header, values)
            if len(values) != len(header):
                items.append(
                    (
                        line,
                        0,
                        f"row {line}",
                        Malformed(f"The row has {len(values)} fields but the header has {len(header)}."),
                        raw,
                    )
                )
                continue
            row = {h: v.strip() for h, v in zip(header, values, strict=True)}
            try:
                start = parse_date(row["DECOM"], "DECOM", required=True)
                end = parse_date(row["DEC"], "DEC")
                if not row["CHILD"]:
                    raise MappingError("CHILD is missing.")
            except MappingError as exc:
                items.append((line, 0, f"row {line}", Malformed(str(exc)), raw))
                broken.add(row["CHILD"])
                continue
            by_child.setdefault(row["CHILD"], []).append((start, end, line, row))
        for child_id, episodes in by_child.items():
            if child_id in broken:
                continue
            episodes.sort(key=lambda e: (e[0], e[2]))
            first: tuple[Any, Any, int, dict[str, str]] | None = None
            for episode in episodes:
                start, end, line, row = episode
                first = first or episode
                base = {
                    "la_code": self.la_code,
                    "child": child_id,
                    "header": people.get(child_id),
                    "start": first[3]["DECOM"],
                    "end": row["DEC"],
                    "LS": row["LS"],
                    "CIN": row["CIN"],
                    "PLACE": row["PLACE"],
                    "REC": row["REC"],
                }
                period = f"{self.la_code}|{child_id}|{date_key(first[3]['DECOM'])}"
                if episode is first:
                    f_line = first[2]
                    start_fields = {
                        **base,
                        "LS": first[3]["LS"],
                        "CIN": first[3]["CIN"],
                        "PLACE": first[3]["PLACE"],
                    }
                    items.append(
                        (
                            f_line,
                            1,
                            f"row {f_line} (period of care starts)",
                            Fact("lac_start", f"lac-start|{period}", start_fields),
                            _line(header, [first[3][h] for h in header]),
                        )
                    )
                if end is not None and row["REC"] and row["REC"].upper() != CONTINUES:
                    items.append(
                        (
                            line,
                            2,
                            f"row {line} (period of care ends)",
                            Fact("lac_end", f"lac-end|{period}", base),
                            _line(header, [row[h] for h in header]),
                        )
                    )
                    first = None
        items.sort(key=lambda item: (item[0], item[1]))
        for ordinal, (_, _, position, data, raw) in enumerate(items):
            yield SourceRecord(
                ref.connector, ref.source, ref.file_id, ordinal, position, data, raw, "text/csv"
            )
