"""The child of a local-authority return: which identifiers it carries, checked."""

from __future__ import annotations

from typing import Any

from connectors.exceptions import MappingError
from connectors.local_authority.profile import LaProfile
from connectors.runtime.snapshots import clean, parse_date
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import UPN_UNKNOWN_CODES, validate_nhs_number


def child_identity(
    profile: LaProfile,
    la_code: str,
    la_child_id: str | None,
    *,
    upn: str | None = None,
    birth_date: str | None = None,
    nhs_number: str | None = None,
    birth_element: str = "PersonBirthDate",
) -> dict[str, Any]:
    """The Child record of an LA return: the authority's id, the UPN unless a 'UPN unknown'
    code stands in its place, and the NHS number from the export or the cross-reference."""
    la_id = clean(la_child_id)
    nhs = clean(nhs_number)
    if nhs:
        try:
            nhs = validate_nhs_number(nhs)
        except InvalidIdentifier as exc:
            raise MappingError(f"NHS number: {exc}") from None
    elif la_id:
        nhs = profile.xref.get(la_id)
    upn_text = clean(upn)
    if upn_text and upn_text.upper() in UPN_UNKNOWN_CODES:
        upn_text = None
    return {
        "nhs_number": nhs,
        "upn": upn_text,
        "la_child_id": la_id,
        "date_of_birth": parse_date(birth_date, birth_element),
        "local_authority_code": la_code,
    }
