"""A plan or looked-after status its authority withdraws no longer flags the child.

A local authority's next complete return without a plan, or a record entered in error, is a
``RETRACTED`` correction of the event that started it. Before, the filter left the flag as it
was (a correction changed no state), so a child whose plan was withdrawn stayed flagged for
good (a withdrawn plan never gets an end) and every emergency attendance went on to the MASH.
Now the retraction of the event that set a flag as it stands undoes it; the retraction of any
other event changes nothing, so a flag is never cleared on another event's word.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from consent import state_updates as status
from consent.filter.store import dumps, loads
from consent.state import ChildState


def plan(event_id: str, change: str, start: date = date(2026, 9, 1)) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "CHILD_PROTECTION_PLAN",
        "source": {"agency": "LOCAL_AUTHORITY"},
        "child": {"local_authority_code": "202"},
        "details": {"change": change, "responsible_local_authority_code": "202", "start_date": start},
    }


def retraction(event_id: str, of: str, event_type: str = "CHILD_PROTECTION_PLAN") -> dict[str, Any]:
    """A metadata-only notice, as the connectors send it: blank details, the key's child only."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "source": {"agency": "LOCAL_AUTHORITY"},
        "child": {"local_authority_code": "202"},
        "details": {},
        "correction": {"kind": "RETRACTED", "corrects_event_id": of},
    }


def replay(*events: dict[str, Any]) -> ChildState:
    state = ChildState()
    for event in events:
        state = status.derive(event, state)
    return state


def active(state: ChildState) -> bool:
    return bool(state.child_protection_plan and state.child_protection_plan.active)


def test_a_withdrawn_plan_no_longer_flags_the_child() -> None:
    assert active(replay(plan("p1", "STARTED")))
    assert not active(replay(plan("p1", "STARTED"), retraction("r1", of="p1")))


def test_a_withdrawn_end_makes_the_plan_active_again() -> None:
    ended = replay(plan("p1", "STARTED"), plan("p2", "ENDED"))
    assert not active(ended)
    assert active(status.derive(retraction("r2", of="p2"), ended))


def test_a_flag_is_never_cleared_on_another_events_word() -> None:
    """A second plan started after the first: withdrawing the first, or an unrelated event,
    leaves the child on the plan that stands."""
    state = replay(plan("p1", "STARTED"), plan("p2", "ENDED"), plan("p3", "STARTED", date(2026, 11, 1)))
    for other in ("p1", "p2", "some-attendance"):
        assert status.derive(retraction("r", of=other), state) is state
    assert status.derive(retraction("r", of="p3", event_type="LOOKED_AFTER_STATUS"), state) is state


def test_amendments_and_erasures_change_no_flag() -> None:
    state = replay(plan("p1", "STARTED"))
    for kind in ("AMENDED", "ERASED"):
        notice = {**retraction("c", of="p1"), "correction": {"kind": kind, "corrects_event_id": "p1"}}
        assert status.derive(notice, state) is state


def test_the_withdrawal_is_a_versioned_change_every_filter_process_agrees_on() -> None:
    """It travels as any flag change does: a new fact version on the status record, naming the
    event that set the flag, through the store and the compacted topic's record."""
    started = replay(plan("p1", "STARTED"))
    withdrawn = status.derive(retraction("r1", of="p1"), started)
    assert status.flags_changed(started, withdrawn)
    assert withdrawn.version("child_protection_plan") == started.version("child_protection_plan") + 1
    assert loads(dumps(started)).child_protection_plan.event_id == "p1"  # type: ignore[union-attr]
    record = status.status_record("la:202:C1", started, "p1", now=datetime(2026, 12, 1, tzinfo=UTC))
    assert record["child_protection_plan_event_id"] == "p1"
    rebuilt = status.apply_status(ChildState(), record)  # another process, or a fresh start
    assert not active(status.derive(retraction("r1", of="p1"), rebuilt))
    # A status record that comes back late never brings a withdrawn plan back.
    assert not active(status.apply_status(withdrawn, record))


def test_a_store_row_written_before_flags_named_their_event_still_reads() -> None:
    row = '[[],[true,"202","2026-09-01"],null,null,null,"202",[["child_protection_plan",1]]]'
    flag = loads(row).child_protection_plan
    assert flag is not None and flag.active and flag.event_id is None
    # With no event named, no retraction can match it: the plan stands until it ends.
    assert active(status.derive(retraction("r1", of="p1"), loads(row)))
