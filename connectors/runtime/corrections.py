"""Corrections a source sends about events it published (POLICY.md principle 10).

A correction is an ordinary ``SafeguardingEvent`` with its own event id and a ``correction``
naming the kind (``AMENDED``, ``RETRACTED``, ``ERASED``) and the id of the event it corrects.
An ``AMENDED`` event carries the full new content (:func:`mark_correction` on a mapped event);
a ``RETRACTED`` or ``ERASED`` notice carries only metadata (:func:`correction_notice`): its
child is only the key it is routed by and its details are blank, so nothing about the child
travels with it. Every connector that corrects, and ``sgb erase``, builds them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.runtime.event_builder import CHILD_FIELDS
from connectors.runtime.records import uuid5_text
from schemas.blank import blank_details

#: The correction kinds a source may send.
AMENDED, RETRACTED, ERASED = "AMENDED", "RETRACTED", "ERASED"


def derived_event_id(connector: str, identity: str) -> str:
    """The event id of what a source calls ``identity`` (a fact's key, a force's record id): the
    same on every run and in every file, so a later correction can name it."""
    return uuid5_text(f"{connector}|{identity}")


def mark_correction(
    event: dict[str, Any], kind: str, corrects_event_id: str, event_id: str
) -> dict[str, Any]:
    """``event`` made the ``kind`` correction of ``corrects_event_id``, with its own ``event_id``."""
    event["event_id"] = event_id
    event["correction"] = {"kind": kind, "corrects_event_id": corrects_event_id}
    return event


def child_of_key(key: str) -> dict[str, Any]:
    """The child record that has ``key`` (:func:`schemas.child_keys.child_key`) as its key, and nothing else."""
    kind, _, rest = key.partition(":")
    child: dict[str, Any] = dict.fromkeys(CHILD_FIELDS)
    if kind == "nhs":
        child["nhs_number"] = rest
    elif kind == "la":
        child["local_authority_code"], _, child["la_child_id"] = rest.partition(":")
    elif kind == "police":
        child["police_person_reference"] = rest
    elif kind == "lpi":
        child["local_patient_id_issuer"], _, child["local_patient_id"] = rest.partition(":")
    else:
        child["upn"] = rest
    return child


def correction_notice(
    *,
    event_id: str,
    kind: str,
    corrects_event_id: str,
    event_type: str,
    child_key: str,
    source: Mapping[str, Any],
    at: datetime,
) -> dict[str, Any]:
    """A metadata-only ``RETRACTED`` or ``ERASED`` notice of an ``event_type`` event about the
    child keyed ``child_key`` (so it follows its original to the same ingress partition)."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": at,
        "recorded_at": at,
        "source": dict(source),
        "risk": "INFORMATION",
        "child": child_of_key(child_key),
        "related_people": [],
        "details": blank_details(event_type),
        "narrative": None,
        "withheld_fields": [],
        "generalised_fields": {},
        "correction": {"kind": kind, "corrects_event_id": corrects_event_id},
    }
