"""The SSDA903 XML export (``EXPSSDA903/CHILD``, each with a ``HEADER`` and its ``EPISODE``
elements), read one ``CHILD`` at a time as period-of-care facts.

Positions are ``CHILD n / EPISODE m``. A child with an episode whose ``DECOM`` or ``DEC`` is
not a date is held back (one dead letter with the reason) until a corrected export comes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.exceptions import MappingError
from connectors.local_authority import xmlstream
from connectors.local_authority.ssda903_periods import (
    EPISODE_COLUMNS,
    HEADER_COLUMNS,
    Item,
    in_scope,
    periods,
)
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import parse_date


def xml_export_records(la_code: str, ref: FileRef, scope: str | None = None) -> Iterator[SourceRecord]:
    """Each ``CHILD`` of the XML export as period-of-care facts, positions ``CHILD n / EPISODE m``;
    ``scope`` is the extract's (see :meth:`Ssda903Reader._scope`)."""
    ordinal = 0
    for kind, elem, n in xmlstream.stream(ref.path, ref.source, "CHILD", "HEADER"):
        if kind != "record":
            continue
        raw = xmlstream.as_bytes(elem)
        head = xmlstream.child(elem, "HEADER")
        child_id = xmlstream.text(head, "CHILDID") or ""
        items: list[Item] = []
        if not child_id:
            items.append(Item(0, 0, "", Malformed("HEADER/CHILDID is missing."), raw))
        people = {child_id: {name: xmlstream.text(head, name) or "" for name in HEADER_COLUMNS}}
        episodes: list[tuple[Any, Any, int, dict[str, str]]] = []
        broken = ""
        for m, node in enumerate(xmlstream.children(elem, "EPISODE"), start=1):
            row = {name: xmlstream.text(node, name) or "" for name in EPISODE_COLUMNS}
            row["PLACE"] = row["PLACE"] or xmlstream.text(node, "PL") or ""
            try:
                start = parse_date(row["DECOM"], f"EPISODE {m} / DECOM", required=True)
                end = parse_date(row["DEC"], f"EPISODE {m} / DEC")
            except MappingError as exc:
                broken = broken or str(exc)
                continue
            episodes.append((start, end, m, row))
        if child_id and broken:
            reason = f"Held back: {broken} This child waits for a corrected export."
            items.append(Item(0, 0, "", Malformed(reason, child_id), raw))
        elif child_id:
            items = periods(
                la_code,
                child_id,
                episodes,
                people,
                lambda m: f"EPISODE {m}",
                lambda _row: raw,  # noqa: B023 - used in this iteration
            )
        items.sort(key=lambda item: (item.line, item.order))
        for item in items:
            position = f"CHILD {n}" + (f" / {item.position}" if item.position else "")
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                position,
                in_scope(item.data, la_code, scope),
                raw,
                "application/xml",
            )
            ordinal += 1
