"""The SQLite sink: one row per event, primary key ``event_id``, one transaction per batch; a
correction updates its original's row (:mod:`broker.hub.sinks.corrections`).

The same file is the inbox page's store (``sgb hub serve``): it adds the audit decisions
for its audience and organisation and the positions it read them to, in tables beside
the deliveries, so a ``subscribe`` process and the page can share one database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from broker.hub.sinks.base import SinkError, SinkUnavailable, check_owner, row
from broker.hub.sinks.corrections import split, update

if TYPE_CHECKING:
    from broker.hub.delivered import HubEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS sgb_sink (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id            TEXT PRIMARY KEY,
    event_type          TEXT NOT NULL,
    risk                TEXT NOT NULL,
    audience            TEXT NOT NULL,
    organisation        TEXT NOT NULL,
    occurred_at         TEXT NOT NULL,
    recorded_at         TEXT NOT NULL,
    delivered_at        TEXT NOT NULL,
    source_agency       TEXT NOT NULL,
    source_organisation TEXT NOT NULL,
    policy_version      TEXT NOT NULL,
    topic               TEXT NOT NULL,
    partition           INTEGER NOT NULL,
    "offset"            INTEGER NOT NULL,
    withheld_fields     TEXT NOT NULL,
    event               TEXT NOT NULL,
    stored_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (occurred_at DESC);
CREATE TABLE IF NOT EXISTS audit (
    event_id       TEXT NOT NULL,
    audience       TEXT NOT NULL,
    organisation   TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    reason         TEXT,
    rule           TEXT,
    lawful_basis   TEXT,
    consent_state  TEXT,
    policy_version TEXT NOT NULL,
    decided_at     TEXT NOT NULL,
    PRIMARY KEY (event_id, audience, organisation)
);
CREATE TABLE IF NOT EXISTS positions (
    topic     TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset"  INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

_INSERT = """
INSERT INTO deliveries (event_id, event_type, risk, audience, organisation, occurred_at, recorded_at,
                        delivered_at, source_agency, source_organisation, policy_version, topic, partition,
                        "offset", withheld_fields, event)
VALUES (:event_id, :event_type, :risk, :audience, :organisation, :occurred_at, :recorded_at, :delivered_at,
        :source_agency, :source_organisation, :policy_version, :topic, :partition, :offset, :withheld_fields,
        :event)
ON CONFLICT (event_id) DO NOTHING
"""
#: A correction updates the original's row (broker/hub/sinks/corrections.py); once erased, a
#: row changes no more, and the same correction applied twice changes nothing.
_CORRECT = """
UPDATE deliveries SET correction = :correction, corrected_by = :corrected_by,
       event = COALESCE(:event, json_set(event, '$.correction', json(:mark))),
       withheld_fields = COALESCE(:withheld_fields, withheld_fields)
WHERE event_id = :corrects_event_id AND correction IS NOT 'ERASED' AND corrected_by IS NOT :corrected_by
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the store with durable commits: WAL, ``synchronous=FULL``, owner-only file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(SCHEMA)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(deliveries)")}
        for column in ("correction", "corrected_by"):  # stores made before corrections existed
            if column not in columns:
                conn.execute(f"ALTER TABLE deliveries ADD COLUMN {column} TEXT")
    except (OSError, sqlite3.Error) as exc:
        msg = f"Cannot open the SQLite store {path}: {exc}."
        raise SinkError(msg) from None
    return conn


def claim(conn: sqlite3.Connection, audience: str, organisation: str, where: str) -> None:
    """Record which hub organisation the store belongs to, refusing one that belongs to another."""
    found = dict(conn.execute("SELECT key, value FROM sgb_sink WHERE key IN ('audience', 'organisation')"))
    stored = (found["audience"], found["organisation"]) if len(found) == 2 else None
    check_owner(stored, audience, organisation, where)
    if stored is None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR IGNORE INTO sgb_sink (key, value) VALUES (?, ?)",
            [("audience", audience), ("organisation", organisation)],
        )
        conn.execute("COMMIT")


def _text(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


class SqliteSink:
    """Deliveries into a SQLite file, each batch one transaction, duplicates ignored by primary key.

    Args:
        path: the database file (created, owner-only).
        audience: the hub's audience; the file is refused if it belongs to another hub.
        organisation: the hub's organisation code.
    """

    kind = "sqlite"

    def __init__(self, path: Path, audience: str, organisation: str) -> None:
        self.path = path
        self._conn = connect(path)
        claim(self._conn, audience, organisation, f"SQLite store {path}")

    def write(self, events: Sequence[HubEvent]) -> int:
        plain, corrections = split(events)
        rows = [{k: _text(v) for k, v in row(e).items()} for e in plain]
        try:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_INSERT, rows)
                for correction in corrections:  # in order: an amendment, then its erasure
                    self._conn.execute(_CORRECT, update(correction))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            msg = f"Writing to the SQLite store {self.path} failed: {exc}."
            raise SinkUnavailable(msg) from None
        return self._conn.total_changes - before

    def close(self) -> None:
        self._conn.close()
