"""SSDA903 episodes to periods of care: the part the CSV tables and the XML export share.

A period of care starts at a child's first episode (``DECOM``) and ends at the ``DEC`` of an
episode whose ``REC`` ends care (any reason other than ``X1``, "episode ends, care
continues"); the next episode after that starts a new period. Overlapping episodes are
reported as a data-quality finding on the period's events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from connectors.runtime.event_builder import Finding
from connectors.runtime.readers import Malformed
from connectors.runtime.snapshots import Fact, date_key

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
#: One episode: ``(DECOM, DEC, line or index, the row's fields)``.
Episode = tuple[Any, Any, int, dict[str, str]]


class Item:
    """One record to yield, placed by (line, order within the line)."""

    __slots__ = ("data", "line", "order", "position", "raw")

    def __init__(self, line: int, order: int, position: str, data: Any, raw: bytes) -> None:
        self.line, self.order, self.position, self.data, self.raw = line, order, position, data, raw


def periods(
    la_code: str,
    child_id: str,
    episodes: list[Episode],
    people: dict[str, dict[str, str]],
    where: Callable[[int], str],
    raw_of: Callable[[dict[str, str]], bytes],
) -> list[Item]:
    """The period-of-care facts of one child's episodes ``(DECOM, DEC, line, row)``."""
    episodes.sort(key=lambda e: (e[0], e[2]))
    findings = [
        Finding(
            "details.start_date",
            f"The child's episodes at {where(a[2])} and {where(b[2])} overlap; "
            "the period of care may be wrong.",
            withheld=False,
        )
        for a, b in itertools.pairwise(episodes)
        if a[1] is None or a[1] > b[0]
    ]
    items: list[Item] = []
    first: Episode | None = None
    for episode in episodes:
        _, end, line, row = episode
        first = first or episode
        base = {
            "la_code": la_code,
            "child": child_id,
            "header": people.get(child_id),
            "start": first[3]["DECOM"],
            "end": row["DEC"],
            "LS": row["LS"],
            "CIN": row["CIN"],
            "PLACE": row["PLACE"],
            "REC": row["REC"],
            "findings": findings,
        }
        period = f"{la_code}|{child_id}|{date_key(first[3]['DECOM'])}"
        if episode is first:
            start_fields = {**base, "LS": row["LS"], "CIN": row["CIN"], "PLACE": row["PLACE"]}
            items.append(
                Item(
                    line,
                    1,
                    f"{where(line)} (period of care starts)",
                    Fact("lac_start", f"lac-start|{period}", start_fields),
                    raw_of(row),
                )
            )
        if end is not None and row["REC"] and row["REC"].upper() != CONTINUES:
            items.append(
                Item(
                    line,
                    2,
                    f"{where(line)} (period of care ends)",
                    Fact("lac_end", f"lac-end|{period}", base),
                    raw_of(row),
                )
            )
            first = None
    return items


def in_scope(data: Any, la_code: str, scope: str | None) -> Any:
    """A record's data with the extract's scope and the child it is about (``<LA>|<CHILD>``)."""
    if isinstance(data, Fact):
        return replace(data, scope=scope, subject=f"{la_code}|{data.fields['child']}")
    if isinstance(data, Malformed) and data.subject is not None:
        return replace(data, subject=f"{la_code}|{data.subject}")
    return data
