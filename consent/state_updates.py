"""Per-child state updates: from consent records, status records and local-authority events.

The filter derives flag changes from CHILD_PROTECTION_PLAN and LOOKED_AFTER_STATUS events
and publishes them to the compacted ``sg.status.v1``; every filter process (and a fresh
start) rebuilds the same state from that topic and ``sg.consent.v1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from consent.state import ChildState, Consent, Flag

FLAG_EVENTS = {"CHILD_PROTECTION_PLAN": "child_protection_plan", "LOOKED_AFTER_STATUS": "looked_after"}


def apply_consent(state: ChildState, record: Mapping[str, Any]) -> ChildState:
    """Apply a ConsentRecord (newest by recorded time wins)."""
    recorded = record["recorded_at"]
    if isinstance(recorded, datetime) and recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=UTC)
    consent = Consent(
        audience=str(record["audience"]),
        purpose=str(record["purpose"]),
        state=str(record["state"]),
        given_by=record.get("given_by"),
        recorded_at=recorded,
        consent_id=record.get("consent_id"),
        recorded_by=record.get("recorded_by"),
    )
    return state.with_consent(consent)


def consent_in_force(state: ChildState, late: Mapping[str, Any]) -> dict[str, Any] | None:
    """When ``late`` lost to a consent recorded later, the winning record (for re-publishing), else None."""
    for consent in state.consents:
        same = consent.audience == str(late["audience"]) and consent.purpose == str(late["purpose"])
        if same and (
            consent.recorded_at > late["recorded_at"]
            or (consent.recorded_at == late["recorded_at"] and consent.consent_id != late.get("consent_id"))
        ):
            return {
                "consent_id": consent.consent_id or "",
                "nhs_number": late.get("nhs_number"),
                "la_child_id": late.get("la_child_id"),
                "local_authority_code": late.get("local_authority_code"),
                "audience": consent.audience,
                "purpose": consent.purpose,
                "state": consent.state,
                "given_by": consent.given_by,
                "recorded_at": consent.recorded_at,
                "recorded_by": consent.recorded_by or "",
            }
    return None


#: The facts a status record states, each versioned on its own: flags change only with
#: local-authority events, organisations with events of any agency, possibly decided by
#: different filter processes, so one fact's newer version must not bring another's older value.
FACTS = ("child_protection_plan", "looked_after", "school_urn", "gp_practice_ods", "local_authority_code")


def _flag(active: Any, la: Any, start: Any, event_id: Any = None) -> Flag | None:
    if active is None:
        return None
    return Flag(bool(active), la, start if isinstance(start, date) else None, event_id)


def _record_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "child_protection_plan": _flag(
            record.get("child_protection_plan_active"),
            record.get("child_protection_plan_local_authority_code"),
            record.get("child_protection_plan_start_date"),
            record.get("child_protection_plan_event_id"),
        ),
        "looked_after": _flag(
            record.get("looked_after_active"),
            record.get("looked_after_local_authority_code"),
            record.get("looked_after_start_date"),
            record.get("looked_after_event_id"),
        ),
        "school_urn": record.get("school_urn"),
        "gp_practice_ods": record.get("gp_practice_ods"),
        "local_authority_code": record.get("local_authority_code"),
    }


def merge_status(state: ChildState, record: Mapping[str, Any]) -> tuple[ChildState, bool]:
    """Apply a ChildStatus record fact by fact, keeping for each fact the higher version.

    A record that comes back after the filter has already decided a newer change (its own
    record read back late, or another process's record written from an older view) never
    overwrites that change. An organisation the record leaves empty is kept as known.

    Returns:
        The merged state, and whether the record was stale on some fact (the state holds a
        newer version than the record states), which a reader may have to publish again.
    """
    recorded = record.get("fact_versions") or {}
    values = _record_facts(record)
    changes: dict[str, Any] = {}
    versions = dict(state.versions)
    stale = False
    for fact in FACTS:
        theirs, ours = int(recorded.get(fact, 0)), state.version(fact)
        if theirs < ours:
            stale = True
            continue
        if theirs == ours and theirs > 0:
            continue  # the same change, or a concurrent one already in force here
        value = values[fact]
        if value is None and fact not in FLAG_FACTS:
            continue
        changes[fact] = value
        if theirs:
            versions[fact] = theirs
    if not changes:
        return state, stale
    return replace(state, **changes, versions=tuple(sorted(versions.items()))), stale


def apply_status(state: ChildState, record: Mapping[str, Any]) -> ChildState:
    """Apply a ChildStatus record (see :func:`merge_status`)."""
    return merge_status(state, record)[0]


FLAG_FACTS = frozenset(FLAG_EVENTS.values())


def _with_versions(before: ChildState, after: ChildState) -> ChildState:
    """``after`` with the version of each fact that differs from ``before`` raised by one."""
    versions = dict(before.versions)
    changed = False
    for fact in FACTS:
        if getattr(before, fact) != getattr(after, fact):
            versions[fact] = before.version(fact) + 1
            changed = True
    return replace(after, versions=tuple(sorted(versions.items()))) if changed else after


def derive(event: Mapping[str, Any], state: ChildState) -> ChildState:
    """The child's state after ``event``: flags from LA events, organisations the event names;
    each fact that changes gets the next version. A correction changes state only when the
    source retracts the event that set a flag as it stands (:func:`_retracted`)."""
    correction = event.get("correction")
    after = _retracted(event, correction, state) if correction else _derive(event, state)
    return state if after == state else _with_versions(state, after)


def _retracted(event: Mapping[str, Any], correction: Mapping[str, Any], state: ChildState) -> ChildState:
    """The state after a source's correction. An amendment or an erasure leaves the flags as
    they are (an amended plan is still a plan; the share ledger tells its recipients). A
    retraction of the event that set a flag as it stands undoes that event: a plan or status
    withdrawn by its authority (entered in error, taken back from a return) is no longer active,
    and a withdrawn end makes it active again. A retraction of any other event (an earlier
    plan, since superseded) changes nothing, so a flag is never cleared on another event's word.
    """
    attr = FLAG_EVENTS.get(str(event.get("event_type")))
    if correction.get("kind") != "RETRACTED" or attr is None:
        return state
    flag: Flag | None = getattr(state, attr)
    if flag is None or flag.event_id is None or flag.event_id != correction.get("corrects_event_id"):
        return state
    undone = replace(flag, active=not flag.active, event_id=str(event.get("event_id")))
    if attr == "child_protection_plan":
        return replace(state, child_protection_plan=undone)
    return replace(state, looked_after=undone)


#: Principle 9: which agencies' events the filter remembers each organisation from. Another
#: agency's mention (a police report naming a school) routes that event only: the police may
#: have it wrong, and it must not redirect every later event of the child.
RESPONSIBLE_AGENCIES = {
    "school_urn": frozenset({"EDUCATION", "LOCAL_AUTHORITY"}),
    "gp_practice_ods": frozenset({"HEALTH"}),
    "local_authority_code": frozenset({"LOCAL_AUTHORITY"}),
}


def _remembered(event: Mapping[str, Any], child: Mapping[str, Any], state: ChildState, fact: str) -> Any:
    agency = str((event.get("source") or {}).get("agency"))
    named = child.get(fact) if agency in RESPONSIBLE_AGENCIES[fact] else None
    return named or getattr(state, fact)


def _derive(event: Mapping[str, Any], state: ChildState) -> ChildState:
    child = event.get("child") or {}
    school = _remembered(event, child, state, "school_urn")
    gp = _remembered(event, child, state, "gp_practice_ods")
    la = _remembered(event, child, state, "local_authority_code")
    new = state
    if (school, gp, la) != (state.school_urn, state.gp_practice_ods, state.local_authority_code):
        new = replace(state, school_urn=school, gp_practice_ods=gp, local_authority_code=la)
    attr = FLAG_EVENTS.get(str(event.get("event_type")))
    if attr is None:
        return new
    details = event.get("details") or {}
    change = details.get("change")
    la = details.get("responsible_local_authority_code") or new.local_authority_code
    if change not in ("STARTED", "ENDED"):
        return new
    flag = Flag(change == "STARTED", la, details.get("start_date"), event.get("event_id"))
    if attr == "child_protection_plan":
        return replace(new, child_protection_plan=flag)
    return replace(new, looked_after=flag)


def status_record(
    key: str,
    state: ChildState,
    event_id: str | None,
    now: datetime | None = None,
    written_by: str | None = None,
) -> dict[str, Any]:
    """The ChildStatus record published to ``sg.status.v1`` for a child, with its fact versions."""
    cpp, lac = state.child_protection_plan, state.looked_after
    return {
        "child_key": key,
        "child_protection_plan_active": cpp.active if cpp else False,
        "child_protection_plan_local_authority_code": cpp.local_authority_code if cpp else None,
        "child_protection_plan_start_date": cpp.start_date if cpp else None,
        "child_protection_plan_event_id": cpp.event_id if cpp else None,
        "looked_after_active": lac.active if lac else False,
        "looked_after_local_authority_code": lac.local_authority_code if lac else None,
        "looked_after_start_date": lac.start_date if lac else None,
        "looked_after_event_id": lac.event_id if lac else None,
        "school_urn": state.school_urn,
        "gp_practice_ods": state.gp_practice_ods,
        "local_authority_code": state.local_authority_code,
        "updated_at": now or datetime.now(UTC),
        "updated_by_event_id": event_id,
        "fact_versions": dict(state.versions),
        "written_by": written_by,
    }


def flags_changed(before: ChildState, after: ChildState) -> bool:
    """Whether anything published on ``sg.status.v1`` differs."""
    return (
        before.child_protection_plan,
        before.looked_after,
        before.school_urn,
        before.gp_practice_ods,
        before.local_authority_code,
    ) != (
        after.child_protection_plan,
        after.looked_after,
        after.school_urn,
        after.gp_practice_ods,
        after.local_authority_code,
    )
