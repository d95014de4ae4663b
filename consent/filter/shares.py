"""The filter's share ledger: who received each decided event (``sg.shares.v1``).

One entry per decided event id, compacted, written in the batch's transaction with the
deliveries and audit records it describes, so the ledger says exactly what was committed.
Every filter process reads the topic back into its state store as a global table (with
the consent and status topics), so whichever process owns a child's partition later can
route a correction (principle 10) and skip an event id that was already decided: a
connector's re-send produces no second delivery and no second audit record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from consent.corrections import Recipient, correction_of, decide_correction, recipients_of, told
from consent.engine import Decision, Engine
from consent.filter.store import StateStore
from consent.state import ChildState
from schemas.vocabulary import Audience, CorrectionKind

Produce = Callable[[str, dict[str, Any]], None]


def _millis(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def entry_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """A decoded ShareRecord as the store keeps it (JSON-ready)."""
    return {**record, "decided_at": _millis(record["decided_at"])}


def recipients(entry: dict[str, Any]) -> tuple[Recipient, ...]:
    """The recipients an entry lists."""
    return tuple(
        Recipient(
            Audience(r["audience"]),
            str(r["organisation"]),
            str(r["rule"]),
            CorrectionKind(r["told"]) if r.get("told") else None,
        )
        for r in entry.get("recipients") or ()
    )


def _recipient_fields(recipient: Recipient) -> dict[str, Any]:
    return {
        "audience": recipient.audience.value,
        "organisation": recipient.organisation,
        "rule": recipient.rule,
        "told": recipient.told.value if recipient.told else None,
    }


class ShareBook:
    """Reads and writes the share ledger for the filter's commit path.

    Args:
        store: the filter's state store (entries are committed or rolled back with it).
        produce: writes one entry to ``sg.shares.v1`` in the open transaction, keyed by event id.
    """

    __slots__ = ("_produce", "_store")

    def __init__(self, store: StateStore, produce: Produce) -> None:
        self._store = store
        self._produce = produce

    def decided(self, event_id: str) -> bool:
        """Whether ``event_id`` was already decided (its deliveries and audit are on record)."""
        return self._store.share(event_id) is not None

    def recipients(self, event_id: str) -> tuple[Recipient, ...]:
        """Who received ``event_id`` (empty when nobody did, or it is unknown)."""
        entry = self._store.share(event_id)
        return recipients(entry) if entry else ()

    def record(
        self,
        event: dict[str, Any],
        child_key: str,
        sent: tuple[Recipient, ...],
        now: datetime | int,
        corrects: str | None = None,
    ) -> None:
        """Put the entry of a decided event: who it was sent to (for a correction, who was told)."""
        self._put(
            {
                "event_id": str(event["event_id"]),
                "event_type": str(event["event_type"]),
                "child_key": child_key,
                "recipients": [_recipient_fields(r) for r in sent],
                "correction": None,
                "corrects_event_id": corrects,
                "revision": 0,
                "decided_at": _millis(now),
            }
        )

    def corrected(self, event_id: str, kind: CorrectionKind, after: tuple[Recipient, ...]) -> None:
        """Mark the original ``event_id`` corrected, each recipient with what it was told."""
        entry = self._store.share(event_id)
        if entry is None:
            return
        self._put(
            {
                **entry,
                "recipients": [_recipient_fields(r) for r in after],
                "correction": kind.value,
                "revision": int(entry["revision"]) + 1,
            }
        )

    def _put(self, entry: dict[str, Any]) -> None:
        self._store.put_share(entry["event_id"], entry)
        self._produce(entry["event_id"], entry)


def apply_read_back(store: StateStore, record: dict[str, Any]) -> bool:
    """Apply an entry read from the topic unless the store has the same or a newer revision
    (this process's own entries come back after it has moved on); True when applied."""
    entry = entry_from_record(record)
    held = store.share(entry["event_id"])
    if held is not None and int(held["revision"]) >= int(entry["revision"]):
        return False
    store.put_share(entry["event_id"], entry)
    return True


def decide(engine: Engine, book: ShareBook, event: dict[str, Any], state: ChildState) -> list[Decision]:
    """The decisions on one event: the engine's for an ordinary event; for a correction, one
    per recipient of the original it corrects (principle 10), none when nobody received it."""
    correction = correction_of(event)
    if correction is None:
        return engine.decide(event, state)
    kind, corrects = correction
    return decide_correction(engine, event, state, kind, book.recipients(corrects))


def settle(
    book: ShareBook,
    event: dict[str, Any],
    child_key: str,
    final: list[Decision],
    now: datetime | int,
    arrived_as: str | None = None,
) -> None:
    """Put the ledger entries of a decided event, from its final decisions (after a failed
    redaction withheld some): its own entry, and for a correction the original's, marked.
    ``arrived_as``: the id of the amendment decided as this original (:func:`as_original`),
    recorded too, so that its re-send is skipped."""
    correction = correction_of(event)
    book.record(event, child_key, recipients_of(final), now, corrects=correction[1] if correction else None)
    if arrived_as is not None:
        book.record({**event, "event_id": arrived_as}, child_key, (), now, corrects=str(event["event_id"]))
    if correction is not None:
        kind, corrects = correction
        book.corrected(corrects, kind, told(book.recipients(corrects), final))
