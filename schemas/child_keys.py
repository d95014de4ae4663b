"""The child's key: the Kafka message key that keeps one child's events in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Why an event that names no child is refused (dead-lettered by the filter, an error of
#: ``sgb policy evaluate``): it has no key, so it cannot be decided against any child's state.
NO_CHILD = "Event identifies no child (no NHS number, local id, police reference or UPN)."


def child_key(child: Mapping[str, Any]) -> str | None:
    """The stable key of a child: NHS number when known, else the local authority's id, else
    the police person reference, else the UPN. None when the event identifies no child.

    Health events are keyed by NHS number; a local-authority record without one is keyed
    by the authority's id (and counted as unmatched by its connector).
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
    return None


def consent_child_key(record: Mapping[str, Any]) -> str | None:
    """The child key of a ConsentRecord (it names the child by NHS number or local id)."""
    return child_key(
        {
            "nhs_number": record.get("nhs_number"),
            "la_child_id": record.get("la_child_id"),
            "local_authority_code": record.get("local_authority_code"),
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
