"""Helpers every mapping function uses: the event envelope and the child's identity checks.

Pure functions; every error is a :class:`MappingError` whose message names the field and
what is wrong with it, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from connectors.exceptions import MappingError
from connectors.runtime.records import SourceRecord
from schemas.child_keys import child_key
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import (
    validate_gp_practice_code,
    validate_la_child_id,
    validate_la_code,
    validate_nhs_number,
    validate_police_person_reference,
    validate_school_urn,
    validate_upn,
)

#: Every field of the Child record, so a mapped child is complete even where the source is silent.
CHILD_FIELDS = (
    "nhs_number",
    "upn",
    "la_child_id",
    "police_person_reference",
    "given_name",
    "family_name",
    "date_of_birth",
    "ethnicity",
    "address",
    "confidential_address",
    "school_urn",
    "gp_practice_ods",
    "local_authority_code",
)

_CHECKS: dict[str, Callable[[str], str]] = {
    "nhs_number": validate_nhs_number,
    "upn": validate_upn,
    "la_child_id": validate_la_child_id,
    "police_person_reference": validate_police_person_reference,
    "school_urn": validate_school_urn,
    "gp_practice_ods": validate_gp_practice_code,
    "local_authority_code": validate_la_code,
}

ADULT_AGE = 18


def age_on(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def is_child_on(born: date | None, at: datetime) -> bool | None:
    """Whether someone born on ``born`` is under 18 at ``at``; None when the birth date is unknown."""
    if born is None:
        return None
    return age_on(born, at.date()) < ADULT_AGE


def checked_child(child: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The child record, complete and with its identifiers in normal form.

    Raises :class:`MappingError` when an identifier is malformed, the date of birth is after
    the event, or the child cannot be keyed (no NHS number, local id, police reference or UPN).
    """
    out = {name: child.get(name) for name in CHILD_FIELDS}
    unknown = set(child) - set(CHILD_FIELDS)
    if unknown:
        msg = f"child has unknown field(s): {', '.join(sorted(unknown))}."
        raise MappingError(msg)
    for name, check in _CHECKS.items():
        value = out[name]
        if value is None:
            continue
        try:
            out[name] = check(value)
        except InvalidIdentifier as exc:
            msg = f"child.{name}: {exc}"
            raise MappingError(msg) from None
    born = out["date_of_birth"]
    if born is not None and born > at.date():
        msg = "child.date_of_birth is after the event."
        raise MappingError(msg)
    if child_key(out) is None:
        msg = (
            "The record identifies no child: it has no NHS number, local authority id, "
            "police reference or UPN."
        )
        raise MappingError(msg)
    return out


def build_event(
    record: SourceRecord,
    *,
    event_type: str,
    occurred_at: datetime,
    recorded_at: datetime | None,
    source: Mapping[str, Any],
    risk: str,
    child: Mapping[str, Any],
    details: Mapping[str, Any],
    related_people: list[dict[str, Any]] | None = None,
    narrative: str | None = None,
) -> dict[str, Any]:
    """A ``SafeguardingEvent`` dict whose event id is the record's deterministic id.

    Raises :class:`MappingError` if a time has no zone or the child's identity is unusable.
    """
    for name, value in (("occurred_at", occurred_at), ("recorded_at", recorded_at)):
        if value is not None and value.tzinfo is None:
            msg = f"{name} has no time zone."
            raise MappingError(msg)
    return {
        "event_id": record.event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at or occurred_at,
        "source": dict(source),
        "risk": risk,
        "child": checked_child(child, occurred_at),
        "related_people": related_people or [],
        "details": dict(details),
        "narrative": narrative,
        "withheld_fields": [],
        "generalised_fields": {},
    }
