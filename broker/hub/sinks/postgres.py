"""The PostgreSQL sink: primary key ``event_id``, ``INSERT ... ON CONFLICT DO NOTHING``, one
transaction per batch (psycopg 3).

One database, or one schema (``?options=-csearch_path%3Dhub_school``), per hub organisation:
the sink records which hub it belongs to and refuses to write another's deliveries.
Connection failures are retried by the subscriber; the sink reconnects on the next write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from broker.hub.sinks.base import SinkError, SinkUnavailable, check_owner, row
from broker.hub.sinks.corrections import split, update

if TYPE_CHECKING:
    from broker.hub.delivered import HubEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS sgb_sink (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS sgb_deliveries (
    event_id            text PRIMARY KEY,
    event_type          text NOT NULL,
    risk                text NOT NULL,
    audience            text NOT NULL,
    organisation        text NOT NULL,
    occurred_at         timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL,
    delivered_at        timestamptz NOT NULL,
    source_agency       text NOT NULL,
    source_organisation text NOT NULL,
    policy_version      text NOT NULL,
    topic               text NOT NULL,
    partition           integer NOT NULL,
    "offset"            bigint NOT NULL,
    withheld_fields     jsonb NOT NULL,
    event               jsonb NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sgb_deliveries_by_time ON sgb_deliveries (occurred_at DESC);
ALTER TABLE sgb_deliveries ADD COLUMN IF NOT EXISTS correction text;
ALTER TABLE sgb_deliveries ADD COLUMN IF NOT EXISTS corrected_by text;
"""

_INSERT = """
INSERT INTO sgb_deliveries (event_id, event_type, risk, audience, organisation, occurred_at,
                            recorded_at, delivered_at, source_agency, source_organisation, policy_version,
                            topic, partition, "offset", withheld_fields, event)
VALUES (%(event_id)s, %(event_type)s, %(risk)s, %(audience)s, %(organisation)s, %(occurred_at)s,
        %(recorded_at)s, %(delivered_at)s, %(source_agency)s, %(source_organisation)s, %(policy_version)s,
        %(topic)s, %(partition)s, %(offset)s, %(withheld_fields)s::jsonb, %(event)s::jsonb)
ON CONFLICT (event_id) DO NOTHING
"""
#: A correction updates the original's row (broker/hub/sinks/corrections.py); once erased, a
#: row changes no more, and the same correction applied twice changes nothing.
_CORRECT = """
UPDATE sgb_deliveries SET correction = %(correction)s, corrected_by = %(corrected_by)s,
       event = COALESCE(%(event)s::jsonb, jsonb_set(event, '{correction}', %(mark)s::jsonb)),
       withheld_fields = COALESCE(%(withheld_fields)s::jsonb, withheld_fields)
WHERE event_id = %(corrects_event_id)s AND correction IS DISTINCT FROM 'ERASED'
      AND corrected_by IS DISTINCT FROM %(corrected_by)s
"""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        msg = "The postgres sink needs psycopg: install sgb with its hub dependencies (psycopg[binary])."
        raise SinkError(msg) from None
    return psycopg


def _where(dsn: str) -> str:
    """Host, port and database of a DSN, for messages: never the user or the password."""
    psycopg = _psycopg()
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the PostgreSQL database"
    host, port = info.get("host", "localhost"), info.get("port", 5432)
    return f"PostgreSQL database {info.get('dbname', '?')} at {host}:{port}"


class PostgresSink:
    """Deliveries into PostgreSQL, each batch one transaction, duplicates ignored by primary key.

    Args:
        dsn: a libpq connection string or URI.
        audience: the hub's audience; the database is refused if it belongs to another hub.
        organisation: the hub's organisation code.
    """

    kind = "postgres"

    def __init__(self, dsn: str, audience: str, organisation: str) -> None:
        self._psycopg = _psycopg()
        self._dsn = dsn
        self.where = _where(dsn)
        self.audience, self.organisation = audience, organisation
        self._conn: Any = None
        try:
            self._connect()
        except SinkUnavailable as exc:
            raise SinkError(str(exc)) from None

    def _connect(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self._dsn, connect_timeout=10, application_name="sgb-hub")
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(4232017)")  # one creator of the tables at a time
                conn.execute(SCHEMA)
                found = dict(
                    conn.execute(
                        "SELECT key, value FROM sgb_sink WHERE key IN ('audience', 'organisation')"
                    ).fetchall()
                )
                stored = (found["audience"], found["organisation"]) if len(found) == 2 else None
                check_owner(stored, self.audience, self.organisation, self.where)
                if stored is None:
                    conn.execute(
                        "INSERT INTO sgb_sink (key, value) VALUES ('audience', %s), "
                        "('organisation', %s) ON CONFLICT (key) DO NOTHING",
                        (self.audience, self.organisation),
                    )
        except psycopg.OperationalError:
            msg = f"Cannot connect to {self.where}."
            raise SinkUnavailable(msg) from None
        except psycopg.Error as exc:
            msg = f"{self.where} refused the sink's tables: {type(exc).__name__}."
            raise SinkError(msg) from None
        self._conn = conn
        return conn

    def write(self, events: Sequence[HubEvent]) -> int:
        psycopg = self._psycopg
        plain, corrections = split(events)
        rows = [row(e) for e in plain]
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                inserted = 0
                if rows:
                    cur.executemany(_INSERT, rows)
                    inserted = cur.rowcount
                for correction in corrections:  # in order: an amendment, then its erasure
                    cur.execute(_CORRECT, update(correction))
                    inserted += max(0, cur.rowcount)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self.close()
            msg = f"Writing to {self.where} failed; the batch will be retried."
            raise SinkUnavailable(msg) from None
        except psycopg.Error as exc:
            msg = f"{self.where} refused a batch: {type(exc).__name__}; the batch will be retried."
            raise SinkUnavailable(msg) from None
        return max(0, int(inserted))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
