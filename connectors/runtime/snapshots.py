"""Snapshots to events: returns and exports that restate everything, published as changes only.

A census return, an SSDA903 extract or a Common Transfer File says what is true *now*, not
what happened. Its reader turns it into :class:`Fact` records, each with a key naming one
thing that can happen once (``cpp-start|202|C123|2024-04-01``: that plan started;
``cpp-end|...``: that plan ended). A fact whose key the connector has already published is
unchanged and yields :class:`NoEvent`; a new key is a change and becomes its event. So a
plan that appears is ``STARTED``, an end date that appears is ``ENDED``, and re-running the
same return publishes nothing.

The published keys are kept under ``<state_dir>/connectors/<name>/snapshot.log``, one hashed
key per line (no identifier is stored in clear), appended and fsynced *after* Kafka commits
the transaction that carried their events and before the file checkpoint moves, so a crash
leaves at most the runtime's usual one-batch window (the re-sent events carry the same ids).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from connectors.exceptions import MappingError, NoEvent
from connectors.runtime.records import MapRecord, SourceRecord

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
    """One thing a return says, that becomes at most one event.

    Args:
        kind: what it is (``cpp_start``, ``referral_outcome``, ``lac_end``, ...).
        key: the identity of the change it records; published once per connector.
        fields: the values the mapping reads, as text from the source.
    """

    kind: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


class SnapshotStore:
    """The keys a connector has published, durable under its state folder.

    Args:
        root: ``<state_dir>/connectors/<name>``.
        durable: False for a dry run: the log is read, and what would be published is kept in
            memory only.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.durable = durable
        self.path = root / "snapshot.log"
        self._published: set[str] = set()
        self._claimed: set[str] = set()
        if self.path.exists():
            with self.path.open("r", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    line = line.strip()
                    if len(line) == 24:  # a torn last line (a crash mid-append) is ignored
                        self._published.add(line)

    def __len__(self) -> int:
        return len(self._published)

    def claim(self, key: str) -> bool:
        """Whether ``key`` is new: not published before, nor claimed earlier in this run."""
        digest = _digest(key)
        if digest in self._published or digest in self._claimed:
            return False
        self._claimed.add(digest)
        return True

    def release(self, key: str) -> None:
        """Forget a claim whose event was not published (it will be tried again next return)."""
        self._claimed.discard(_digest(key))

    def published(self, keys: Iterable[str]) -> None:
        """Record ``keys`` as published (call only after Kafka committed their events)."""
        digests = [_digest(k) for k in keys]
        if not digests:
            return
        if not self.durable:
            self._published.update(digests)
            self._claimed.difference_update(digests)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(f"{d}\n" for d in digests).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._published.update(digests)
        self._claimed.difference_update(digests)


class SnapshotMapper:
    """Wraps a mapping function of :class:`Fact` records: a fact already published is NoEvent.

    Args:
        inner: maps a fact record to its event (pure).
        store: the connector's published keys.
    """

    __slots__ = ("inner", "store")

    def __init__(self, inner: MapRecord, store: SnapshotStore) -> None:
        self.inner = inner
        self.store = store

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        fact: Fact = record.data
        if not self.store.claim(fact.key):
            msg = "Unchanged since the return last published."
            raise NoEvent(msg)
        try:
            return self.inner(record)
        except BaseException:
            self.store.release(fact.key)
            raise


class SnapshotDelivery:
    """Wraps a delivery: after each commit, records the published facts' keys in the store.

    Also counts the children published without an NHS number (keyed by the authority's id).

    Args:
        inner: the transactional delivery.
        store: the connector's published keys.
    """

    def __init__(self, inner: Any, store: SnapshotStore) -> None:
        self.inner = inner
        self.store = store
        self._keys: dict[tuple[str, int], str] = {}
        self._unmatched_open: set[str] = set()
        self.unmatched: set[str] = set()

    @property
    def pending(self) -> int:
        return int(self.inner.pending)

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        fact: Fact = record.data
        try:
            self.inner.publish(record, event)
        except BaseException:
            self.store.release(fact.key)
            raise
        self._keys[(record.file_id, record.ordinal)] = fact.key
        child = event.get("child")
        if child is not None and not child.get("nhs_number"):
            self._unmatched_open.add(f"{child.get('local_authority_code')}:{child.get('la_child_id')}")
        elif child is None and not event.get("nhs_number"):
            self._unmatched_open.add(f"{event.get('local_authority_code')}:{event.get('la_child_id')}")

    def dead_letter(self, record: SourceRecord, reason: str) -> None:
        if isinstance(record.data, Fact):
            self.store.release(record.data.key)
        self.inner.dead_letter(record, reason)

    def data_quality(self, record: SourceRecord, findings: list[Any]) -> None:
        self.inner.data_quality(record, findings)

    def skip(self, record: SourceRecord) -> None:
        self.inner.skip(record)

    def positions(self) -> list[tuple[str, int]]:
        positions: list[tuple[str, int]] = self.inner.positions()
        return positions

    def checkpoint(self, file_id: str, progress: Any) -> None:
        self.inner.checkpoint(file_id, progress)

    def commit(self) -> list[tuple[str, int]]:
        done = self.inner.commit()
        keys = [k for k in (self._keys.pop(d, None) for d in done) if k is not None]
        self.store.published(keys)  # 1. Kafka committed  2. keys durable  3. (caller) checkpoint
        self.unmatched |= self._unmatched_open
        self._unmatched_open = set()
        return done  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


def local_midnight(day: date, zone: Any) -> datetime:
    """Midnight at the start of ``day`` in ``zone`` (returns give dates, events need times)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)
