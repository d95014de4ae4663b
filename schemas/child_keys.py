"""The child's key: the Kafka message key that keeps one child's events in order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Why an event that names no child is refused (dead-lettered by the filter, an error of
#: ``sgb policy evaluate``): it has no key, so it cannot be decided against any child's state.
NO_CHILD = "Event identifies no child (no NHS number, local id, police reference, UPN or local patient id)."

#: The kind of identifier each child-key prefix stands for, as the audit names it (never its value).
IDENTIFIER_KINDS = {
    "nhs": "NHS_NUMBER",
    "la": "LA_CHILD_ID",
    "police": "POLICE_PERSON_REFERENCE",
    "upn": "UPN",
    "lpi": "LOCAL_PATIENT_ID",
}
#: What a child key looks like: the forms :func:`child_key` makes.
CHILD_KEY = re.compile(r"^(nhs:[0-9]{10}|la:[0-9]{3}:\S+|police:\S+|upn:[A-Z0-9]{13}|lpi:[A-Z0-9]{3,6}:\S+)$")


def child_key(child: Mapping[str, Any]) -> str | None:
    """The stable key of a child: NHS number when known, else the local authority's id, else
    the police person reference, else the UPN, else a hospital's local patient id. None when
    the event identifies no child.

    Health events are keyed by NHS number, a patient without one by the hospital's local
    patient id (``lpi:<ods>:<id>``); a local-authority record without one is keyed by the
    authority's id (and counted as unmatched by its connector). The filter links keys of one
    child through its identity index (POLICY.md principle 11).
    """
    nhs = child.get("nhs_number")
    if nhs:
        return f"nhs:{nhs}"
    la_id, la = child.get("la_child_id"), child.get("local_authority_code")
    if la_id and la:
        return f"la:{la}:{la_id}"
    police = child.get("police_person_reference")
    if police:
        return f"police:{police}"
    upn = child.get("upn")
    if upn:
        return f"upn:{upn}"
    lpi, issuer = child.get("local_patient_id"), child.get("local_patient_id_issuer")
    if lpi and issuer:
        return f"lpi:{issuer}:{lpi}"
    return None


def child_identifiers(child: Mapping[str, Any]) -> tuple[str, ...]:
    """Every identifier the record names the child by, as child keys, :func:`child_key` first:
    the identifiers the source holds together are one child by the source's own evidence.
    ``linked_identifiers`` that are not child keys are ignored (they are never guessed at)."""
    first = child_key(child)
    keys = [first] if first else []
    for name, value in (
        ("la", (child.get("local_authority_code"), child.get("la_child_id"))),
        ("police", (child.get("police_person_reference"),)),
        ("upn", (child.get("upn"),)),
        ("lpi", (child.get("local_patient_id_issuer"), child.get("local_patient_id"))),
    ):
        if all(value):
            keys.append(":".join((name, *(str(v) for v in value))))
    for linked in child.get("linked_identifiers") or ():
        if isinstance(linked, str) and CHILD_KEY.match(linked):
            keys.append(linked)
    return tuple(dict.fromkeys(keys))


def identifier_kind(key: str) -> str | None:
    """The kind of identifier a child key is (``NHS_NUMBER``, ``UPN``, ...), None when unknown."""
    return IDENTIFIER_KINDS.get(key.split(":", 1)[0])


def identifier_namespace(key: str) -> str:
    """Who issues the identifier: ``nhs``, ``la:<code>``, ``police``, ``upn`` or ``lpi:<ods>``.
    One child has at most one identifier per namespace unless an agency itself says otherwise."""
    prefix, _, rest = key.partition(":")
    if prefix in ("la", "lpi"):
        return f"{prefix}:{rest.split(':', 1)[0]}"
    return prefix


def consent_child_key(record: Mapping[str, Any]) -> str | None:
    """The child key of a ConsentRecord (it names the child by NHS number, local id or UPN)."""
    return child_key(
        {
            "nhs_number": record.get("nhs_number"),
            "la_child_id": record.get("la_child_id"),
            "local_authority_code": record.get("local_authority_code"),
            "upn": record.get("upn"),
        }
    )


def consent_key(record: Mapping[str, Any]) -> str | None:
    """The message key of a ConsentRecord on the compacted ``sg.consent.v1``.

    One key per child, audience and purpose, so compaction keeps a child's consent for
    each audience (a key per child alone would let one audience's record erase another's).
    """
    child = consent_child_key(record)
    if child is None:
        return None
    return f"{child}|{record['audience']}|{record['purpose']}"
