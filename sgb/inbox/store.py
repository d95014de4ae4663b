"""The inbox's SQLite store: the hub's deliveries (written by the SQLite sink) and the audit
decisions for its own audience and organisation (written by the audit reader).

Only the decision's outcome, reason, rule, lawful basis, consent state, policy version and
time are kept: the audit record's list of removed fields is not, because it names fields
(a confidential address, say) whose very existence the hub may not be told.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.hub.sinks.sqlite import connect


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """One delivered event as the store holds it (the event in its JSON shape)."""

    event_id: str
    event: dict[str, Any]
    withheld_fields: tuple[str, ...]
    delivered_at: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """The audit decision for one event and this hub's audience and organisation."""

    event_id: str
    outcome: str
    reason: str | None
    rule: str | None
    lawful_basis: str | None
    consent_state: str | None
    policy_version: str
    decided_at: str


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


class InboxStore:
    """Reads and audit writes on one hub's SQLite store; safe to use from several threads.

    Args:
        path: the database file (created with its tables if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._conn()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    # -- deliveries ------------------------------------------------------------------------
    def recent(self, limit: int = 200) -> list[StoredDelivery]:
        """The newest deliveries first (by when they were delivered, then when they happened)."""
        rows = (
            self._conn()
            .execute(
                "SELECT event_id, event, withheld_fields, delivered_at, policy_version FROM deliveries "
                "ORDER BY delivered_at DESC, occurred_at DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [_delivery(r) for r in rows]

    def get(self, event_id: str) -> StoredDelivery | None:
        """One delivery by event id, or None."""
        found = (
            self._conn()
            .execute(
                "SELECT event_id, event, withheld_fields, delivered_at, policy_version FROM deliveries "
                "WHERE event_id = ?",
                (event_id,),
            )
            .fetchone()
        )
        return _delivery(found) if found else None

    def count(self) -> int:
        """How many deliveries the store holds."""
        return int(self._conn().execute("SELECT count(*) FROM deliveries").fetchone()[0])

    # -- decisions -------------------------------------------------------------------------
    def decisions(
        self, event_ids: Iterable[str], audience: str, organisation: str
    ) -> dict[str, StoredDecision]:
        """The decisions for ``event_ids`` and this hub, by event id (missing ones not yet read)."""
        ids = list(event_ids)
        out: dict[str, StoredDecision] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = (
                self._conn()
                .execute(
                    "SELECT event_id, outcome, reason, rule, lawful_basis, consent_state, policy_version, "
                    f"decided_at FROM audit WHERE audience = ? AND organisation = ? AND event_id IN ({marks})",
                    (audience, organisation, *chunk),
                )
                .fetchall()
            )
            out.update({r[0]: StoredDecision(*r) for r in rows})
        return out

    def withheld_counts(self, audience: str, organisation: str) -> dict[str, int]:
        """How many decisions withheld an event from this hub, by reason."""
        rows = (
            self._conn()
            .execute(
                "SELECT coalesce(reason, 'unknown'), count(*) FROM audit WHERE audience = ? AND organisation = ? "
                "AND outcome = 'WITHHOLD' GROUP BY 1 ORDER BY 2 DESC",
                (audience, organisation),
            )
            .fetchall()
        )
        return {r[0]: int(r[1]) for r in rows}

    def put_decisions(
        self, records: Iterable[Mapping[str, Any]], positions: Mapping[tuple[str, int], int]
    ) -> None:
        """Store decisions and the audit positions read to, in one transaction (none lost, none doubled)."""
        rows = [
            (
                r["event_id"],
                r["audience"],
                r["organisation"],
                r["outcome"],
                r.get("reason"),
                r.get("rule"),
                r.get("lawful_basis"),
                r.get("consent_state"),
                r["policy_version"],
                _iso(r["decided_at"]),
            )
            for r in records
        ]
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO audit (event_id, audience, organisation, outcome, reason, rule, lawful_basis, "
                "consent_state, policy_version, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
            conn.executemany(
                'INSERT INTO positions (topic, partition, "offset") VALUES (?, ?, ?) '
                'ON CONFLICT (topic, partition) DO UPDATE SET "offset" = excluded."offset"',
                [(t, p, o) for (t, p), o in positions.items()],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def positions(self, topic: str) -> dict[int, int]:
        """The next offset to read, by partition, for ``topic``."""
        rows = self._conn().execute('SELECT partition, "offset" FROM positions WHERE topic = ?', (topic,))
        return {int(p): int(o) for p, o in rows}


def _delivery(found: tuple[Any, ...]) -> StoredDelivery:
    event_id, event, withheld, delivered_at, version = found
    return StoredDelivery(event_id, json.loads(event), tuple(json.loads(withheld)), delivered_at, version)
