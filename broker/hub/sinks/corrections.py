"""How a hub sink applies a correction (POLICY.md principle 10).

A delivered correction names the event it corrects (``correction.corrects_event_id``). A
database sink updates the original's row rather than adding one: ``AMENDED`` replaces the
stored copy with the amended one, ``RETRACTED`` marks the row withdrawn by its source, and
``ERASED`` replaces the stored copy with a stub that keeps only the event id, its type and
the fact of erasure (no sealed or personal field survives). The row's other columns are
metadata. The jsonl sink appends the correction's line and, for an erasure, rewrites the
file without the erased event's content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from broker.hub.sinks.base import event_json

if TYPE_CHECKING:
    from broker.hub.delivered import HubEvent

AMENDED, RETRACTED, ERASED = "AMENDED", "RETRACTED", "ERASED"


def correction_of(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, corrected event id) of a delivered copy that is a correction, else None."""
    correction = record.get("correction")
    if not isinstance(correction, Mapping):
        return None
    return str(correction["kind"]), str(correction["corrects_event_id"])


def split(events: Sequence[HubEvent]) -> tuple[list[HubEvent], list[HubEvent]]:
    """The ordinary deliveries and the corrections of a batch, each in order."""
    plain = [e for e in events if correction_of(e.record) is None]
    return plain, [e for e in events if correction_of(e.record) is not None]


def erased_stub(event_id: str, event_type: str, erased_event_id: str) -> dict[str, Any]:
    """What is left of a copy of an erased event (the original, an amendment or the notice):
    its own id, its type and the fact of erasure."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "correction": {"kind": ERASED, "corrects_event_id": erased_event_id},
        "erased": True,
    }


def update(event: HubEvent) -> dict[str, Any]:
    """The parameters of the row update a correction makes (``corrects_event_id``,
    ``correction``, ``corrected_by``, the replacement ``event`` JSON and ``withheld_fields``,
    None to keep the stored ones, and the ``mark`` a kept copy gets as its ``correction``)."""
    found = correction_of(event.record)
    assert found is not None
    kind, corrects = found
    content: str | None = None
    withheld: str | None = None
    if kind == AMENDED:
        content, withheld = event_json(event), json.dumps(list(event.withheld_fields))
    elif kind == ERASED:
        stub = erased_stub(corrects, event.event_type, corrects)
        content, withheld = json.dumps(stub, sort_keys=True), "[]"
    return {
        "corrects_event_id": corrects,
        "correction": kind,
        "corrected_by": event.event_id,
        "event": content,
        "withheld_fields": withheld,
        # Kept copies (a retraction's) are marked in their own JSON, so every reader sees it.
        "mark": json.dumps({"kind": kind, "corrects_event_id": corrects}),
    }


def erased_line(line: bytes, erased: Mapping[str, str]) -> bytes:
    """One jsonl line, replaced by its erasure stub when it holds, amends or notifies an erased
    event (nothing but ids and the type is trusted to stay).

    Args:
        line: the line as stored.
        erased: erased event id -> its event type.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    own = str(record.get("event_id"))
    found = correction_of(record)
    target = found[1] if found is not None else own
    if target not in erased:
        return line
    return (json.dumps(erased_stub(own, erased[target], target), sort_keys=True) + "\n").encode()
