"""The filter's state store: what a rebuild's batched loads and a small cache must not lose."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consent.filter.store import SqliteStore, consent_row, dumps, loads
from consent.state import ChildState, Consent
from consent.state_updates import apply_consent

GIVEN = ChildState(
    consents=(Consent("MASH", "FAMILY_HELP", "GIVEN", "PARENT", datetime(2026, 1, 5, tzinfo=UTC)),)
)
WITHDRAWN = ChildState(
    consents=(Consent("MASH", "FAMILY_HELP", "WITHDRAWN", "PARENT", datetime(2026, 2, 5, tzinfo=UTC)),)
)


def test_a_state_put_and_pushed_out_of_the_cache_is_not_read_back_from_disk(tmp_path: Path) -> None:
    # A withdrawal put since the last commit, then evicted by reads of other children, must
    # still be the child's state: the row on disk is the consent before it (fail closed).
    store = SqliteStore(tmp_path / "state.db", cache_size=2)
    store.put("la:202:A", GIVEN)
    store.commit({})
    store.put("la:202:A", WITHDRAWN)
    for other in ("la:202:B", "la:202:C", "la:202:D"):
        store.get(other)
    assert store.get("la:202:A") == WITHDRAWN
    store.close()


def test_load_brings_stored_and_absent_children_into_the_cache(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", cache_size=10)
    store.put("la:202:A", GIVEN)
    store.commit({("t", 0): 5})
    store.close()
    store = SqliteStore(tmp_path / "state.db", cache_size=10)
    store.load(["la:202:A", "la:202:B", "la:202:A"])
    store._db.close()  # everything now comes from the cache
    assert store.get("la:202:A") == GIVEN
    assert store.get("la:202:B") == ChildState()


def test_a_consent_row_is_the_stored_form_of_the_state_that_record_makes() -> None:
    # A fresh rebuild writes a child's first consent as a row built straight from the record:
    # it must be exactly what storing the merged state would have written.
    rng = random.Random(21)
    texts = ("202", "c-1", 'quote " and \\ back', "ß漢\U0001f600", "")
    for _ in range(500):
        recorded = datetime(2026, 1, 5, 9, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(10**11))
        record = {
            "audience": rng.choice(("MASH", "FAMILY_HELP", "ALL")),
            "purpose": "FAMILY_HELP",
            "state": rng.choice(("GIVEN", "REFUSED", "WITHDRAWN", "NOT_SOUGHT")),
            "given_by": rng.choice(("PARENT", None)),
            "recorded_at": recorded if rng.random() < 0.8 else recorded.replace(tzinfo=None),
            "consent_id": rng.choice((*texts, None)),
            "recorded_by": rng.choice((*texts, None)),
        }
        row = consent_row(record)
        assert row == dumps(apply_consent(ChildState(), record))
        assert loads(row) == apply_consent(ChildState(), record)


def test_a_row_put_for_a_new_child_is_its_state_until_and_after_the_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", cache_size=2)
    assert store.never_held("la:202:A")
    store.get("la:202:A")  # read while empty: an empty state in the cache
    store.put_row("la:202:A", dumps(GIVEN))
    assert not store.never_held("la:202:A")
    assert store.get("la:202:A") == GIVEN
    store.put("la:202:A", WITHDRAWN)  # merged later in the same chunk: the merge wins
    store.put_row("la:202:B", dumps(GIVEN))
    store.commit({("t", 0): 2})
    store.close()
    store = SqliteStore(tmp_path / "state.db")
    assert not store.never_held("la:202:C")  # opened with rows: never sure
    assert store.get("la:202:A") == WITHDRAWN
    assert store.get("la:202:B") == GIVEN
    store.close()


def test_rows_put_since_the_last_commit_are_forgotten_by_a_rollback(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    store.put_row("la:202:A", dumps(GIVEN))
    store.rollback()
    store.commit({("t", 0): 1})
    assert store.get("la:202:A") == ChildState()
    assert store.count() == 0
    store.close()


def test_a_store_made_with_smaller_pages_is_read_and_written_as_it_is(tmp_path: Path) -> None:
    # New stores use 16 KB pages; one made before (4 KB, SQLite's default) keeps working.
    path = tmp_path / "state.db"
    old = sqlite3.connect(str(path))
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE child_state (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
    old.execute("INSERT INTO child_state VALUES (?, ?)", ("la:202:A", dumps(GIVEN)))
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert store.get("la:202:A") == GIVEN
    store.put("la:202:B", WITHDRAWN)
    store.commit({})
    assert store._db.execute("PRAGMA page_size").fetchone()[0] == 4096
    store.close()
    assert SqliteStore(path).get("la:202:B") == WITHDRAWN
    fresh = SqliteStore(tmp_path / "new.db")
    assert fresh._db.execute("PRAGMA page_size").fetchone()[0] == 16384
    fresh.close()
