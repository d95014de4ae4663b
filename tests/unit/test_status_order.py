"""Flags equal an independent replay whatever the read-back order (issue 20, item 1).

A model of the filter's state loop with no Kafka: events are decided in batches of 1..500;
each flag change is published as a status record; before each batch the reader applies a
random part of what has been published and not yet read back (its own records return
late, in order). After the last batch every record has come back. The flags the filter
holds, and the flags a fresh filter rebuilds from the compacted topic (the last record per
child), must equal a plain in-order replay of the child's flag events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consent import state_updates as status
from consent.state import ChildState

CHILDREN = [f"nhs:999000{n:04d}" for n in range(6)]
WRITER = "sgb-filter-a"


def _event(n: int, key: str, event_type: str, change: str) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "event_type": event_type,
        "child": {"local_authority_code": "202"},
        "details": {"change": change, "responsible_local_authority_code": "203"},
    }


flag_events = st.lists(
    st.tuples(
        st.sampled_from(CHILDREN),
        st.sampled_from(sorted(status.FLAG_EVENTS)),
        st.sampled_from(["STARTED", "ENDED"]),
    ),
    min_size=1,
    max_size=600,
)


def _flags(state: ChildState) -> tuple[Any, Any]:
    def active(flag: Any) -> bool:
        return bool(flag and flag.active)

    return active(state.child_protection_plan), active(state.looked_after)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(events=flag_events, batch_size=st.integers(1, 500), data=st.data())
def test_flags_after_any_interleaving_equal_an_in_order_replay(
    events: list[tuple[str, str, str]], batch_size: int, data: st.DataObject
) -> None:
    store: dict[str, ChildState] = {}
    log: list[tuple[str, dict[str, Any]]] = []  # sg.status.v1, in offset order
    read = 0
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for start in range(0, len(events), batch_size):
        # Before each batch the reader drains whatever has come back so far: a random prefix.
        upto = data.draw(st.integers(read, len(log)), label="read back")
        for key, record in log[read:upto]:
            store[key] = status.apply_status(store.get(key, ChildState()), record)
        read = upto
        for n, (key, event_type, change) in enumerate(events[start : start + batch_size], start):
            before = store.get(key, ChildState())
            after = status.derive(_event(n, key, event_type, change), before)
            store[key] = after
            if status.flags_changed(before, after):
                log.append((key, status.status_record(key, after, f"e{n}", now, written_by=WRITER)))
    for key, record in log[read:]:
        store[key] = status.apply_status(store.get(key, ChildState()), record)

    replay: dict[str, ChildState] = {}
    for n, (key, event_type, change) in enumerate(events):
        replay[key] = status.derive(_event(n, key, event_type, change), replay.get(key, ChildState()))
    compacted = {key: status.apply_status(ChildState(), record) for key, record in log}  # last per key wins

    for key in replay:
        assert _flags(store[key]) == _flags(replay[key]), f"running filter's flags differ for {key}"
        assert _flags(compacted[key]) == _flags(replay[key]), f"rebuilt flags differ for {key}"


def test_another_process_older_record_loses_and_is_reported_stale() -> None:
    plan = _event(1, CHILDREN[0], "CHILD_PROTECTION_PLAN", "STARTED")
    old_view = status.derive(_event(0, CHILDREN[0], "LOOKED_AFTER_STATUS", "STARTED"), ChildState())
    newer = status.derive(plan, old_view)
    stale_record = status.status_record(CHILDREN[0], old_view, "e0", written_by="sgb-filter-b")
    merged, stale = status.merge_status(newer, stale_record)
    assert stale is True
    assert merged.child_protection_plan is not None and merged.child_protection_plan.active
    assert merged.looked_after is not None and merged.looked_after.active
