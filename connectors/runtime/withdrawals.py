"""When a return withdraws what an earlier one said: the rule, and the reader that applies it.

A fact published from an earlier return and absent from this one is withdrawn (a
``RETRACTED`` notice) only when all of these hold; otherwise its absence says nothing and
nothing is sent, because a retraction is itself a loss to the recipient (fail closed):

1. **This return is complete.** It was read in full (a file that fails part-way publishes
   nothing at all, so it withdraws nothing either) and it names its scope: its kind, its
   authority and its period (a CIN census header's ``CollectionDetails/Year``; for SSDA903
   tables and case-system exports, ``--period``). A return that does not say its period
   withdraws nothing; a return with no facts at all withdraws nothing.
2. **Of the same scope.** Only facts last published from a return of the same kind,
   authority and period are compared: next year's census does not withdraw this year's
   closed plans, and an SSDA903 extract whose episodes table is missing withdraws no period
   of care (each table is its own kind: ``ssda903|episodes|...``, ``ssda903|missing|...``).
3. **Not superseded.** A referral's outcome that moved on (an assessment, then a section 47
   enquiry) is answered by the newer outcome: the older one is not withdrawn.
4. **Nothing of the child is held back.** A child with any record in this return that could
   not be read or mapped (dead-lettered: a bad row, a doubtful header, a code the mapping
   refuses) keeps every fact it had: it waits for a corrected return. A record that cannot be
   read and does not even say whose it is holds back the whole return's withdrawals.

The withdrawal records follow the file's own records, in a stable order, so a run stopped
part-way resumes them from its checkpoint like any other record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.exceptions import MappingError, NoEvent
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import MapRecord, SourceRecord
from connectors.runtime.snapshot_store import SnapshotStore, digest
from connectors.runtime.snapshots import Fact, Withdrawal


class MappedOnce:
    """The mapping function, shared by :class:`WithdrawingReader` (which maps each fact to know
    whether it holds its child back) and the snapshot mapper that maps it again right after:
    the second call for the same record takes the first call's outcome (its event, or the
    exception it raised) instead of mapping again. Any other call maps.

    Args:
        inner: the pure mapping function.
    """

    __slots__ = ("_outcome", "_record", "inner")

    def __init__(self, inner: MapRecord) -> None:
        self.inner = inner
        self._record: SourceRecord | None = None
        self._outcome: dict[str, Any] | Exception | None = None

    def __getattr__(self, name: str) -> Any:  # record_key, and whatever else a wrapper asks of it
        return getattr(self.inner, name)

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        if record is self._record:  # the second call: the first one's outcome, once
            outcome, self._record, self._outcome = self._outcome, None, None
            if isinstance(outcome, Exception):
                raise outcome
            assert outcome is not None
            return outcome
        try:
            event = self.inner(record)
        except Exception as exc:
            self._record, self._outcome = record, exc
            raise
        self._record, self._outcome = record, event
        return event


class WithdrawingReader:
    """A snapshot reader's records, then a :class:`Withdrawal` for each fact the return no
    longer has, by the rule of this module.

    Args:
        inner: the return's reader.
        mapping: the pure mapping function (to know which children this return holds back).
        store: what the connector published.
    """

    def __init__(self, inner: Any, mapping: MapRecord, store: SnapshotStore) -> None:
        self.inner = inner
        self.mapping = mapping
        self.store = store

    def __getattr__(self, name: str) -> Any:  # suffixes, content_type, kind, check
        return getattr(self.inner, name)

    def estimate(self, path: Path) -> int:
        return int(self.inner.estimate(path))

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        seen: set[str] = set()
        held: set[str | None] = set()
        scopes: set[str | None] = set()
        ordinal = -1
        for record in self.inner.records(ref):
            ordinal = record.ordinal
            data = record.data
            if isinstance(data, Fact):
                seen.update(digest(k) for k in (data.key, data.slot) if k)
                scopes.add(data.scope)
                if not self._maps(record):
                    held.add(data.subject)
            elif isinstance(data, Malformed):
                held.add(data.subject)
            yield record
        scope = next(iter(scopes)) if len(scopes) == 1 else None
        if scope is None or None in held:
            return
        held_digests = {digest(s) for s in held if s is not None}
        for n, entry in enumerate(self.store.in_scope(digest(scope)), start=1):
            if entry.k in seen or entry.o in seen or entry.p in held_digests:
                continue
            ordinal += 1
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                f"withdrawn fact {n}",
                Withdrawal(entry.k),
                content_type="application/json",
            )

    def _maps(self, record: SourceRecord) -> bool:
        """Whether the record maps (or is rightly nothing): one that is dead-lettered holds its child back."""
        try:
            self.mapping(record)
        except NoEvent:
            return True
        except (MappingError, Exception):
            return False
        return True
