"""An HL7 v2 ``A40`` (merge patient) as identity evidence for the filter's child index.

An A40 says "the record MRG-1 names is the same patient as the record PID-3 names". It is
published as one event whose ``merges`` lists every PID/MRG group of the message (an A40
may carry several), each as child keys: PID-3's identifiers (NHS number ``nhs:<number>``,
the hospital's ids ``lpi:<issuer>:<id>``) and every repetition of MRG-1 (which may itself
be an NHS number). The filter links each group's identifiers with rule ``HOSPITAL_MERGE``
and shares the event with no one: its audit record withholds every audience and names the
links it made (POLICY.md principles 7, 8 and 11).

The event is keyed by the first group's surviving record, so it follows that patient's
events on the same ingress partition. It carries identifiers only: no name, date of birth,
address, reason or narrative, so nothing clinical travels with a merge. Its envelope is an
``EMERGENCY_ATTENDANCE`` (the schema needs a type and details: the message's time and
site), but an event with ``merges`` set is never decided as one. A merge of an adult's
records (PID-7 18 years or more before the message) is not published; without PID-7 it is,
since a child index holding a merge it never uses costs nothing. An identifier that fails
its check (an NHS number's check digit, an issuer that is not an ODS code) makes the whole
message a :class:`~connectors.exceptions.MappingError`: dead-lettered, answered ``AR``,
the reason naming the segment and never the value. Its event id is derived from the message
identity, so a re-send is the same event (the filter decides it once).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from connectors.exceptions import MappingError, NoEvent
from connectors.health.hl7_lifecycle import LOCAL_ID_TYPES, NHS_AUTHORITIES, AdtStep, PatientIds
from connectors.runtime.event_builder import CHILD_FIELDS, is_child_on
from connectors.runtime.records import SourceRecord
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import validate_linked_identifier

_ODS = re.compile(r"[A-Z0-9]{3,6}")


def child_keys(ids: PatientIds, issuer: str, where: str) -> list[str]:
    """The identifiers of one PID-3 or MRG-1 as child keys, checked; other identifier types
    are left out. ``issuer``: the hospital's ODS code for an id whose CX-4 is not one.

    Raises:
        MappingError: an identifier fails its check (``where`` names the segment, never the value).
    """
    keys: list[str] = []
    for value, authority, kind in ids:
        if kind == "NH" or authority in NHS_AUTHORITIES:
            key = "nhs:" + re.sub(r"[\s-]", "", value)
        elif (kind or "").upper() in LOCAL_ID_TYPES:
            code = (authority or "").strip().upper()
            key = f"lpi:{code if _ODS.fullmatch(code) else issuer}:{value.strip()}"
        else:
            continue
        try:
            keys.append(validate_linked_identifier(key))
        except InvalidIdentifier as exc:
            msg = f"{where} holds an identifier that is not valid ({str(exc).rstrip('.')})."
            raise MappingError(msg) from None
    keys.sort(key=lambda key: not key.startswith("nhs:"))  # the NHS number keys the record
    return list(dict.fromkeys(keys))


def merges_of(step: AdtStep, issuer: str) -> list[dict[str, Any]]:
    """Every PID/MRG group of an A40 as an ``IdentityMerge`` record, checked.

    Raises:
        MappingError: a group names no usable identifier on either side, or one fails its check.
    """
    merges = []
    for number, (surviving, retired) in enumerate(step.merges, start=1):
        identifiers = child_keys(surviving, issuer, f"PID-3 of group {number}")
        merged = [k for k in child_keys(retired, issuer, f"MRG-1 of group {number}") if k not in identifiers]
        if not identifiers or not merged:
            side = "PID-3" if not identifiers else "MRG-1"
            msg = f"{side} of group {number} names no NHS number or hospital id other than the record's own."
            raise MappingError(msg)
        merges.append({"identifiers": identifiers, "merged_identifiers": merged})
    if not merges:
        msg = "The A40 has no PID segment."
        raise MappingError(msg)
    return merges


def merge_child(first: dict[str, Any]) -> dict[str, Any]:
    """The event's child: the first group's surviving identifiers and nothing else."""
    nhs = next((k[4:] for k in first["identifiers"] if k.startswith("nhs:")), None)
    local = [k for k in first["identifiers"] if k.startswith("lpi:")]
    issuer, _, lpi = local[0][4:].partition(":") if local else (None, "", None)
    return {
        "nhs_number": nhs,
        "local_patient_id": lpi or None,
        "local_patient_id_issuer": issuer,
        "linked_identifiers": local[1:] or None,
    }


def merge_event(
    record: SourceRecord,
    step: AdtStep,
    *,
    at: datetime,
    born: datetime | None,
    site: str,
    issuer: str,
    source: dict[str, Any],
    setting: str | None,
) -> dict[str, Any]:
    """The merge event of an A40 (see the module doc).

    Args:
        record: the message read.
        step: its lifecycle step (``merges`` filled).
        at: when the merge was recorded (EVN-2, else MSH-7).
        born: PID-7, when given.
        site: the hospital's ODS code (MSH-4).
        issuer: the issuer of hospital ids whose CX-4 is no ODS code (as for an attendance).
        source: the event's source, as for an attendance.
        setting: the profile's urgent care setting.
    """
    if is_child_on(born.date() if born else None, at) is False:
        reason = "The patient is 18 or over."
        raise NoEvent(reason)
    merges = merges_of(step, issuer)
    child = dict.fromkeys(CHILD_FIELDS)
    return {
        "event_id": record.event_id,
        "event_type": "EMERGENCY_ATTENDANCE",
        "occurred_at": at,
        "recorded_at": at,
        "source": source,
        "risk": "INFORMATION",
        "child": child | merge_child(merges[0]),
        "related_people": [],
        "details": {"arrival_at": at, "site_ods_code": site, "site_name": site, "setting": setting},
        "narrative": None,
        "merges": merges,
    }
