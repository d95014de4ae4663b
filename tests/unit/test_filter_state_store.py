"""The filter's state store: what a rebuild's batched loads and a small cache must not lose."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from consent.filter.store import SqliteStore
from consent.state import ChildState, Consent

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
