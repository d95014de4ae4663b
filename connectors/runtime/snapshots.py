"""Snapshots to events: returns and exports that restate everything, published as changes only.

A census return, an SSDA903 extract or a Common Transfer File says what is true *now*, not
what happened. Its reader turns it into :class:`Fact` records, each with a key naming one
thing that can happen once (``cpp-start|202|C123|2024-04-01``: that plan started;
``cpp-end|...``: that plan ended). A new key is a change and becomes its event, with an event
id derived from the connector and the key; so a plan that appears is ``STARTED``, an end date
that appears is ``ENDED``, and re-running the same return publishes nothing.

A later return can also correct what an earlier one said (POLICY.md principle 10): a fact
whose content changed is an ``AMENDED`` correction of the event published for it (the full
new content), and a fact that a complete return of the same scope no longer has is a
``RETRACTED`` notice of it ("the source withdrew this record", which is not the plan ending:
see :mod:`connectors.runtime.withdrawals` for when a return may withdraw). What was published
for each fact is kept by :class:`~connectors.runtime.snapshot_store.SnapshotStore`, appended
and fsynced *after* Kafka commits the transaction that carried it and before the file
checkpoint moves; a crash between the two re-sends at most one batch, whose events carry the
same ids (derived from the keys, so the filter decides each once).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from connectors.exceptions import MappingError, NoEvent
from connectors.runtime.corrections import (
    AMENDED,
    RETRACTED,
    correction_notice,
    derived_event_id,
    mark_correction,
)
from connectors.runtime.event_builder import DATA_QUALITY
from connectors.runtime.records import MapRecord, SourceRecord
from connectors.runtime.snapshot_store import Entry, SnapshotStore, digest
from schemas.child_keys import child_key

UNCHANGED = "Unchanged since the return last published."

_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")


def parse_date(text: str | None, element: str, *, required: bool = False) -> date | None:
    """A date written as ISO ``yyyy-mm-dd`` (a time after it is ignored), ``dd/mm/yyyy`` or ``dd/mm/yy``.

    Two-digit years are this century unless that would be in the future. Surrounding spaces
    are ignored; an empty value is None (or an error when ``required``).

    Raises :class:`MappingError` naming ``element`` (never the value) if it is not a real date.
    """
    value = (text or "").strip()
    if not value:
        if required:
            msg = f"{element} is missing."
            raise MappingError(msg)
        return None
    match = _ISO.match(value)
    try:
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
        match = _DMY.match(value)
        if match:
            year = int(match[3])
            if len(match[3]) == 2:
                year += 2000
                if year > date.today().year:
                    year -= 100
            return date(year, int(match[2]), int(match[1]))
    except ValueError:
        msg = f"{element} is not a real date."
        raise MappingError(msg) from None
    msg = f"{element} is not a date (expected yyyy-mm-dd, dd/mm/yyyy or dd/mm/yy)."
    raise MappingError(msg)


def date_key(text: str | None) -> str:
    """A date's normal form for a fact key (so a re-export in another date style is unchanged)."""
    try:
        parsed = parse_date(text, "date")
    except MappingError:
        return (text or "").strip()
    return parsed.isoformat() if parsed else ""


def clean(text: str | None) -> str | None:
    """Text with stray whitespace removed; None when empty."""
    if text is None:
        return None
    value = " ".join(text.split())
    return value or None


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing a return says, that becomes at most one event (and later its corrections).

    Args:
        kind: what it is (``cpp_start``, ``referral_outcome``, ``lac_end``, ...).
        key: the identity of the change it records; published once per connector, its event
            id derived from it.
        fields: the values the mapping reads, as text from the source.
        scope: the return it is part of (kind, authority, period: ``cin|202|2024``), or None
            when the return does not say its period (then its absence withdraws nothing).
        subject: the child it is about (``202|C123``), so a child held back is not withdrawn.
        slot: what the fact answers, when other facts may answer it instead (a referral, whose
            outcome moves on from assessment to section 47): a fact whose slot another fact of
            the return fills is superseded, not withdrawn. None: the fact's own key.
    """

    kind: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    subject: str | None = None
    slot: str | None = None


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A fact published earlier that a complete return of its scope no longer has.

    Args:
        key: the digest of the withdrawn fact's key (:func:`digest`).
    """

    key: str


def _content(event: dict[str, Any]) -> str:
    """A digest of what recipients are told: the event without its id and the connector's notes."""
    told = {k: v for k, v in event.items() if k not in ("event_id", "correction", DATA_QUALITY)}
    return digest(json.dumps(told, sort_keys=True, default=str))


class SnapshotMapper:
    """Wraps a mapping function, publishing each fact's changes only.

    A new fact is published with the event id derived from its key; a fact published before
    whose content changed (or that comes back after it was withdrawn) is an ``AMENDED``
    correction of that event carrying the new content; an unchanged one is NoEvent. A
    :class:`Withdrawal`, or an event the inner mapping marks ``RETRACTED`` (a force's record
    withdrawn), is a ``RETRACTED`` notice of the fact's event.

    A record's fact is its :class:`Fact` key, or for a source of plain rows what the inner
    mapping's ``record_key(event)`` says (a force and its record id); a row without one is
    published as it is, remembered by nothing.

    Args:
        inner: maps a record to its event (pure).
        store: what the connector published.
        corrects: True for a source whose later records correct earlier ones; False (a CTF
            restates a pupil's attendance as it goes, which is news, not a correction): a fact
            is then published once, with the record's id, and never corrected.
    """

    __slots__ = ("corrects", "inner", "record_key", "store")

    def __init__(self, inner: MapRecord, store: SnapshotStore, *, corrects: bool = False) -> None:
        self.inner = inner
        self.store = store
        self.corrects = corrects
        self.record_key = getattr(inner, "record_key", None)

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        data, at = record.data, (record.file_id, record.ordinal)
        if isinstance(data, Withdrawal):
            return self._withdraw(record.connector, at, data.key, None)
        fact_key = digest(data.key) if isinstance(data, Fact) else None
        if fact_key is not None:  # a return states each fact once: the second time is nothing
            before = self.store.get(fact_key)
            if self.store.claimed(fact_key) or (
                before is not None and not (self.corrects and before.correctable)
            ):
                raise NoEvent(UNCHANGED)
        event = self.inner(record)
        identity = data.key if isinstance(data, Fact) else self.record_key(event) if self.record_key else None
        if identity is None:
            return event
        key = fact_key or digest(identity)
        before = self.store.get(key)
        if (event.get("correction") or {}).get("kind") == RETRACTED:
            return self._withdraw(record.connector, at, key, event)
        if not self.corrects or "event_type" not in event:  # a consent record: once per key, as is
            if before is not None:
                raise NoEvent(UNCHANGED)
            self.store.claim(at, Entry(key))
            return event
        original = (
            before.e if before is not None and before.e else derived_event_id(record.connector, identity)
        )
        scope, subject = (data.scope, data.subject) if isinstance(data, Fact) else (None, None)
        entry = Entry(
            key,
            original,
            _content(event),
            digest(scope) if scope else None,
            digest(subject) if subject else None,
            o=digest(data.slot) if isinstance(data, Fact) and data.slot else None,
            t=str(event["event_type"]),
            ck=child_key(event["child"]),
            src=dict(event["source"]),
        )
        if before is None:
            event["event_id"] = original
        elif (before.c == entry.c and not before.w) or not before.correctable:
            raise NoEvent(UNCHANGED)
        else:
            # Its own id names the content too: after a crash that lost the log line of an
            # amendment Kafka took, the same amendment again is the same id (decided once), and
            # a different one is not mistaken for it.
            entry = entry.changed(n=before.n + 1)
            mark_correction(
                event,
                AMENDED,
                original,
                derived_event_id(record.connector, f"{original}|{entry.n}|{entry.c}"),
            )
        self.store.claim(at, entry)
        return event

    def _withdraw(
        self, connector: str, at: tuple[str, int], key: str, event: dict[str, Any] | None
    ) -> dict[str, Any]:
        before = self.store.get(key)
        if before is None or before.w or not before.correctable:
            raise NoEvent("Withdrawn already, or never published.")
        child = self.store.child_key(before)
        assert before.e is not None and before.t is not None and child is not None
        entry = before.changed(n=before.n + 1, w=True)
        self.store.claim(at, entry)
        return correction_notice(
            event_id=derived_event_id(connector, f"{before.e}|{entry.n}"),
            kind=RETRACTED,
            corrects_event_id=before.e,
            event_type=before.t,
            child_key=child,
            source=(event or {}).get("source") or before.src or {},
            at=datetime.now(UTC),
        )


class SnapshotDelivery:
    """Wraps a delivery: after each commit, records the published facts in the store.

    Also counts the children published without an NHS number (keyed by the authority's id).

    Args:
        inner: the transactional delivery.
        store: what the connector published.
    """

    def __init__(self, inner: Any, store: SnapshotStore) -> None:
        self.inner = inner
        self.store = store
        self._unmatched_open: set[str] = set()
        self.unmatched: set[str] = set()

    @property
    def pending(self) -> int:
        return int(self.inner.pending)

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        try:
            self.inner.publish(record, event)
        except BaseException:
            self.store.release((record.file_id, record.ordinal))
            raise
        if event.get("correction"):
            return
        child = event.get("child")
        if child is not None and not child.get("nhs_number"):
            self._unmatched_open.add(f"{child.get('local_authority_code')}:{child.get('la_child_id')}")
        elif child is None and not event.get("nhs_number"):
            self._unmatched_open.add(f"{event.get('local_authority_code')}:{event.get('la_child_id')}")

    def dead_letter(self, record: SourceRecord, reason: str) -> None:
        self.store.release((record.file_id, record.ordinal))
        self.inner.dead_letter(record, reason)

    def data_quality(self, record: SourceRecord, findings: list[Any], event_id: str) -> None:
        self.inner.data_quality(record, findings, event_id)

    def skip(self, record: SourceRecord) -> None:
        self.inner.skip(record)

    def positions(self) -> list[tuple[str, int]]:
        positions: list[tuple[str, int]] = self.inner.positions()
        return positions

    def checkpoint(self, file_id: str, progress: Any) -> None:
        self.inner.checkpoint(file_id, progress)

    def commit(self) -> list[tuple[str, int]]:
        done = self.inner.commit()
        self.store.published(done)  # 1. Kafka committed  2. facts durable  3. (caller) checkpoint
        self.unmatched |= self._unmatched_open
        self._unmatched_open = set()
        return done  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


def local_midnight(day: date, zone: Any) -> datetime:
    """Midnight at the start of ``day`` in ``zone`` (returns give dates, events need times)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)
