"""Helpers every mapping function uses: the event envelope and the child's identity checks.

Pure functions; every error is a :class:`MappingError` whose message names the field and
what is wrong with it, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    validate_linked_identifier,
    validate_local_patient_id,
    validate_nhs_number,
    validate_ods_code,
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
    "local_patient_id",
    "local_patient_id_issuer",
    "linked_identifiers",
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
    "local_patient_id": validate_local_patient_id,
    "local_patient_id_issuer": validate_ods_code,
    "school_urn": validate_school_urn,
    "gp_practice_ods": validate_gp_practice_code,
    "local_authority_code": validate_la_code,
}

ADULT_AGE = 18

#: The key of a mapped event dict that carries its data-quality findings (a list of
#: :class:`Finding`). It is not a schema field: the envelope encodes only schema fields, and
#: the file pipeline takes the findings off the event before publishing it.
DATA_QUALITY = "_data_quality"


@dataclass(frozen=True, slots=True)
class Finding:
    """A data-quality finding: a field the source sent that failed its check and was withheld
    (published as null), or, with ``withheld=False``, a doubt about a published field.

    Args:
        field: the field's path in the event (``child.upn``), never its value.
        reason: what is wrong with it, in one sentence without the value.
        withheld: whether the field was withheld.
    """

    field: str
    reason: str
    withheld: bool = True

    def sentence(self) -> str:
        """``child.upn withheld: UPN check letter does not match.``"""
        return f"{self.field} {'withheld' if self.withheld else 'doubtful'}: {self.reason}"


def age_on(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def is_child_on(born: date | None, at: datetime) -> bool | None:
    """Whether someone born on ``born`` is under 18 at ``at``; None when the birth date is unknown."""
    if born is None:
        return None
    return age_on(born, at.date()) < ADULT_AGE


def _linked(values: Any, found: list[Finding]) -> list[str] | None:
    """The source's cross-referenced identifiers that pass their checks; a bad one is a finding."""
    kept = []
    for value in values:
        try:
            kept.append(validate_linked_identifier(value))
        except InvalidIdentifier as exc:
            found.append(Finding("child.linked_identifiers", str(exc)))
    return kept or None


def checked_child(
    child: Mapping[str, Any],
    at: datetime,
    findings: list[Finding] | None = None,
    *,
    before_birth: bool = False,
) -> dict[str, Any]:
    """The child record, complete and with its identifiers in normal form.

    A bad field withholds that field, not the child: an identifier that fails its check, or
    a date of birth after the event (unless ``before_birth``: work about an unborn child), is
    set to null and appended to ``findings``. Raises :class:`MappingError` only when the
    record has an unknown field, or no valid identifier remains to key the child by (no NHS
    number, local id, police reference, UPN or local patient id).
    """
    out = {name: child.get(name) for name in CHILD_FIELDS}
    unknown = set(child) - set(CHILD_FIELDS)
    if unknown:
        msg = f"child has unknown field(s): {', '.join(sorted(unknown))}."
        raise MappingError(msg)
    found: list[Finding] = []
    for name, check in _CHECKS.items():
        value = out[name]
        if value is None:
            continue
        try:
            out[name] = check(value)
        except InvalidIdentifier as exc:
            out[name] = None
            found.append(Finding(f"child.{name}", str(exc)))
    if out["linked_identifiers"] is not None:
        out["linked_identifiers"] = _linked(out["linked_identifiers"], found)
    born = out["date_of_birth"]
    if born is not None and born > at.date() and not before_birth:
        out["date_of_birth"] = None
        found.append(Finding("child.date_of_birth", "The date of birth is after the event."))
    if child_key(out) is None:
        if found:
            # Nothing valid is left to key the child by: the first bad identifier is the reason.
            msg = f"{found[0].field}: {found[0].reason}"
            raise MappingError(msg)
        msg = (
            "The record identifies no child: it has no NHS number, local authority id, "
            "police reference, UPN or local patient id."
        )
        raise MappingError(msg)
    if findings is not None:
        findings.extend(found)
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
    findings: list[Finding] | None = None,
    before_birth: bool = False,
) -> dict[str, Any]:
    """A ``SafeguardingEvent`` dict whose event id is the record's deterministic id.

    Fields that failed their checks are null and listed, with the ``findings`` the caller
    passes, under :data:`DATA_QUALITY` (only when there are any). ``before_birth``: the
    event may predate the child's birth (pre-birth child protection work).

    Raises :class:`MappingError` if a time has no zone or no valid identifier keys the child.
    """
    for name, value in (("occurred_at", occurred_at), ("recorded_at", recorded_at)):
        if value is not None and value.tzinfo is None:
            msg = f"{name} has no time zone."
            raise MappingError(msg)
    found = list(findings or [])
    checked = checked_child(child, occurred_at, found, before_birth=before_birth)
    event: dict[str, Any] = {
        "event_id": record.event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at or occurred_at,
        "source": dict(source),
        "risk": risk,
        "child": checked,
        "related_people": related_people or [],
        "details": dict(details),
        "narrative": narrative,
        "withheld_fields": [],
        "generalised_fields": {},
    }
    if found:
        event[DATA_QUALITY] = found
    return event


def take_findings(event: dict[str, Any]) -> list[Finding]:
    """Remove and return the event's data-quality findings (empty when it has none)."""
    found: list[Finding] = event.pop(DATA_QUALITY, None) or []
    return found
