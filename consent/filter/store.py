"""Where per-child state lives: an embedded on-disk store (SQLite) with a bounded cache.

State for every child in England (about 12 million) need not fit in memory: rows are on
disk, a least-recently-used cache holds the children being worked on. The store also
remembers how far it has read the compacted state topics, so a restart resumes, and a
fresh store is rebuilt by reading them from the start.
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from consent.state import ChildState, Consent, Flag


class StateStore(Protocol):
    """Per-child state by child key, plus the read positions of the state topics."""

    def get(self, key: str) -> ChildState: ...

    def load(self, keys: Iterable[str]) -> None: ...

    def put(self, key: str, state: ChildState) -> None: ...

    def never_held(self, key: str) -> bool: ...

    def put_row(self, key: str, row: str) -> None: ...

    def share(self, event_id: str) -> dict[str, Any] | None: ...

    def put_share(self, event_id: str, entry: dict[str, Any]) -> None: ...

    def positions(self) -> dict[tuple[str, int], int]: ...

    def commit(self, positions: dict[tuple[str, int], int]) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def _flag_to(flag: Flag | None) -> Any:
    if flag is None:
        return None
    start = flag.start_date.isoformat() if flag.start_date else None
    return [flag.active, flag.local_authority_code, start, flag.event_id]


def _flag_from(raw: Any) -> Flag | None:
    if raw is None:
        return None
    setter = raw[3] if len(raw) > 3 else None  # rows written before flags named their event have three
    return Flag(bool(raw[0]), raw[1], date.fromisoformat(raw[2]) if raw[2] else None, setter)


#: One encoder for every state: ``json.dumps`` with separators builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
#: How the encoder writes a string (``ensure_ascii``), with its quotes.
_JSON_STRING = json.encoder.encode_basestring_ascii
#: Keys per ``IN (...)`` query when loading a batch (under SQLite's bound-parameter limit).
_LOAD_BATCH = 500


def dumps(state: ChildState) -> str:
    """Serialise a state compactly (JSON)."""
    return _COMPACT.encode(
        [
            [
                [
                    c.audience,
                    c.purpose,
                    c.state,
                    c.given_by,
                    c.recorded_at.isoformat(),
                    c.consent_id,
                    c.recorded_by,
                ]
                for c in state.consents
            ],
            _flag_to(state.child_protection_plan),
            _flag_to(state.looked_after),
            state.school_urn,
            state.gp_practice_ods,
            state.local_authority_code,
            [list(v) for v in state.versions],
        ]
    )


def consent_row(record: dict[str, Any]) -> str:
    """``dumps(apply_consent(ChildState(), record))`` without building either: the state of a
    child whose one known record is this ConsentRecord, as a fresh rebuild writes it (the
    strings escaped as ``dumps`` escapes them, assembled without the encoder's per-call cost)."""
    recorded = record["recorded_at"]
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=UTC)
    given_by, consent_id, recorded_by = (
        record.get("given_by"),
        record.get("consent_id"),
        record.get("recorded_by"),
    )
    string = _JSON_STRING
    return (
        f"[[[{string(str(record['audience']))},{string(str(record['purpose']))},"
        f"{string(str(record['state']))},{'null' if given_by is None else string(given_by)},"
        f'"{recorded.isoformat()}",{"null" if consent_id is None else string(consent_id)},'
        f"{'null' if recorded_by is None else string(recorded_by)}]],null,null,null,null,null,[]]"
    )


def loads(text: str) -> ChildState:
    """The inverse of :func:`dumps`."""
    consents, cpp, lac, school, gp, la, *rest = json.loads(text)  # rows before fact versions have six
    versions = tuple((str(name), int(number)) for name, number in rest[0]) if rest else ()
    return ChildState(
        consents=tuple(
            Consent(a, p, s, g, datetime.fromisoformat(r), i, b) for a, p, s, g, r, i, b in consents
        ),
        child_protection_plan=_flag_from(cpp),
        looked_after=_flag_from(lac),
        school_urn=school,
        gp_practice_ods=gp,
        local_authority_code=la,
        versions=versions,
    )


class _Written:
    """The keys a store opened empty has been given (a Bloom filter: never "absent" for a key
    that was given, now and then "present" for one that was not), so that a fresh rebuild asks
    the disk only about children it has already written. 2**27 bits (16 MB) keep the false
    "present" near 3 % at 12 million children; each costs one query, never a wrong state."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits: int = 1 << 27) -> None:
        self._bits = bytearray(bits >> 3)
        self._mask = bits - 1

    def add(self, key: str) -> None:
        number = hash(key)
        for bit in (number & self._mask, (number >> 32) & self._mask):
            self._bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, key: str) -> bool:
        number, mask, bits = hash(key), self._mask, self._bits
        first, second = number & mask, (number >> 32) & mask
        return bool(bits[first >> 3] & (1 << (first & 7))) and bool(bits[second >> 3] & (1 << (second & 7)))


class SqliteStore:
    """The on-disk store.

    Args:
        path: the database file (created with its folder).
        cache_size: how many children's states to keep in memory.
    """

    def __init__(self, path: Path, cache_size: int = 50_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # 16 KB pages for a new store (an existing one keeps its own; SQLite ignores this then):
        # a rebuild writes children in random key order, and with four times fewer B-tree pages
        # its commits touch fewer (1.5 million rows in chunks of 100,000: 10.6 CPU s against 15.6).
        self._db.execute("PRAGMA page_size=16384")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # 64 MB of pages (the default is 2 MB): a national store is gigabytes, written at random keys.
        self._db.execute("PRAGMA cache_size=-65536")
        # WITHOUT ROWID: the key is the table's only index, so a rebuild writes one B-tree, not
        # two (a store made before keeps its table; both read and write the same).
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS child_state (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS positions (topic TEXT, partition INTEGER, "
            "next_offset INTEGER, PRIMARY KEY (topic, partition))"
        )
        # The share ledger's entries by event id (consent/filter/shares.py), as JSON.
        self._db.execute("CREATE TABLE IF NOT EXISTS shares (event_id TEXT PRIMARY KEY, entry TEXT NOT NULL)")
        self._dirty_shares: dict[str, dict[str, Any]] = {}
        self._cache: OrderedDict[str, ChildState] = OrderedDict()
        self._dirty: dict[str, ChildState] = {}
        # Serialised states put with put_row (children a fresh store never held), until the commit.
        self._rows: dict[str, str] = {}
        self._cache_size = cache_size
        # Opened empty (a fresh rebuild), a child with no row is any the store was never given.
        empty = self._db.execute("SELECT 1 FROM child_state LIMIT 1").fetchone() is None
        self._written = _Written() if empty else None

    def get(self, key: str) -> ChildState:
        state = self._cache.get(key)
        if state is not None:
            self._cache.move_to_end(key)
            return state
        state = self._dirty.get(key)  # put but pushed out of the cache: newer than its row
        if state is not None:
            self._remember(key, state)
            return state
        row = self._rows.pop(key, None)
        if row is not None:  # put as a row since the last commit: now a state to merge into
            state = loads(row)
            self._dirty[key] = state
            self._remember(key, state)
            return state
        if self._written is not None and key not in self._written:
            state = ChildState()
            self._remember(key, state)
            return state
        row = self._db.execute("SELECT state FROM child_state WHERE key = ?", (key,)).fetchone()
        state = loads(row[0]) if row else ChildState()
        self._remember(key, state)
        return state

    def load(self, keys: Iterable[str]) -> None:
        """Bring the states of ``keys`` into the cache (children with none as empty states) with
        one query per few hundred keys: a rebuild reads its children a batch at a time instead
        of one query each. Keys beyond the cache's size are left to :meth:`get`."""
        cache, dirty, rows, written = self._cache, self._dirty, self._rows, self._written
        wanted = [k for k in dict.fromkeys(keys) if k not in cache and k not in dirty and k not in rows]
        del wanted[self._cache_size :]
        if written is not None:
            # Children a fresh store was never given have no row: get() answers them without a query.
            wanted = [key for key in wanted if key in written]
        for start in range(0, len(wanted), _LOAD_BATCH):
            part = wanted[start : start + _LOAD_BATCH]
            marks = ",".join("?" * len(part))
            rows = dict(self._db.execute(f"SELECT key, state FROM child_state WHERE key IN ({marks})", part))
            for key in part:
                row = rows.get(key)
                self._remember(key, loads(row) if row is not None else ChildState())

    def put(self, key: str, state: ChildState) -> None:
        if self._written is not None:
            self._written.add(key)
        self._rows.pop(key, None)
        self._dirty[key] = state
        self._remember(key, state)

    def never_held(self, key: str) -> bool:
        """Whether this store, opened empty, has certainly never been given a state for ``key``:
        then the child's state is empty and a rebuild may write its first one without merging.
        False whenever in doubt (a store opened with rows, a key it may have been given)."""
        return self._written is not None and key not in self._written

    def put_row(self, key: str, row: str) -> None:
        """Keep a serialised state (:func:`dumps`' form) for a child :meth:`never_held` until the
        next commit, without building or caching a state: a fresh rebuild writes most children
        once and never reads them back while it runs."""
        if self._written is not None:
            self._written.add(key)
        self._cache.pop(key, None)  # an empty state read before
        self._rows[key] = row

    def _remember(self, key: str, state: ChildState) -> None:
        self._cache[key] = state
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def share(self, event_id: str) -> dict[str, Any] | None:
        """The share ledger's entry for ``event_id`` (uncommitted ones included), or None."""
        entry = self._dirty_shares.get(event_id)
        if entry is not None:
            return entry
        row = self._db.execute("SELECT entry FROM shares WHERE event_id = ?", (event_id,)).fetchone()
        return dict(json.loads(row[0])) if row else None

    def put_share(self, event_id: str, entry: dict[str, Any]) -> None:
        """Keep a ledger entry (JSON-ready) until the next commit or rollback."""
        self._dirty_shares[event_id] = entry

    def positions(self) -> dict[tuple[str, int], int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM positions").fetchall()
        return {(t, p): o for t, p, o in rows}

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Write dirty states and the state-topic positions in one SQLite transaction."""
        if not self._dirty and not self._rows and not positions and not self._dirty_shares:
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO child_state (key, state) VALUES (?, ?)",
                # In key order: neighbouring rows share B-tree pages, so a chunk of a national
                # rebuild touches each page once instead of once per child.
                sorted([*self._rows.items(), *((k, dumps(s)) for k, s in self._dirty.items())]),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO positions (topic, partition, next_offset) VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in positions.items()],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO shares (event_id, entry) VALUES (?, ?)",
                [(k, json.dumps(v, separators=(",", ":"))) for k, v in self._dirty_shares.items()],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._dirty.clear()
        self._rows.clear()
        self._dirty_shares.clear()

    def rollback(self) -> None:
        """Forget states put since the last commit (their transaction was aborted)."""
        for key in self._dirty:
            self._cache.pop(key, None)
        self._dirty.clear()
        self._rows.clear()
        self._dirty_shares.clear()

    def count(self) -> int:
        """How many children have state on disk."""
        return int(self._db.execute("SELECT count(*) FROM child_state").fetchone()[0])

    def close(self) -> None:
        self._db.close()
