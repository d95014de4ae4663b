"""The child of a local-authority return: which identifiers it carries, checked."""

from __future__ import annotations

from typing import Any

from connectors.exceptions import MappingError
from connectors.local_authority.profile import LaProfile
from connectors.runtime.event_builder import Finding
from connectors.runtime.snapshots import clean, parse_date
from schemas.identifiers import UPN_UNKNOWN_CODES


def child_identity(
    profile: LaProfile,
    la_code: str,
    la_child_id: str | None,
    *,
    upn: str | None = None,
    birth_date: str | None = None,
    nhs_number: str | None = None,
    birth_element: str = "PersonBirthDate",
    findings: list[Finding] | None = None,
) -> dict[str, Any]:
    """The Child record of an LA return: the authority's id, the UPN unless a 'UPN unknown'
    code stands in its place, and the NHS number from the export or the cross-reference.

    Identifiers are checked when the event is built (a bad one is withheld there); a date of
    birth that is not a date is withheld here, with a finding naming ``birth_element``.
    """
    la_id = clean(la_child_id)
    nhs = clean(nhs_number)
    if not nhs and la_id:
        nhs = profile.xref.get(la_id)
    upn_text = clean(upn)
    if upn_text and upn_text.upper() in UPN_UNKNOWN_CODES:
        upn_text = None
    try:
        born = parse_date(birth_date, birth_element)
    except MappingError as exc:
        born = None
        if findings is not None:
            findings.append(Finding("child.date_of_birth", str(exc)))
    return {
        "nhs_number": nhs,
        "upn": upn_text,
        "la_child_id": la_id,
        "date_of_birth": born,
        "local_authority_code": la_code,
    }
