"""HL7 v2 ADT messages to ``EMERGENCY_ATTENDANCE`` events: the health connector's mapping
function for HL7 v2 (files or MLLP).

Every ADT trigger of an attendance's lifecycle is understood (see
:mod:`connectors.health.hl7_lifecycle`): ``A04`` (registration) and ``A01`` (admission)
start it and ``A03`` (discharge) ends it, each published as one event when the patient
class (PV1-2, any case) is ``E``, emergency: an A04 says the child arrived, an A01 that they
were admitted, an A03 that they left (PV1-45, with PV1-36 through the profile's
``discharge_codes``). ``A08``, ``A02``, ``A12`` amend what was sent and ``A11``, ``A13``
cancel it: each is published as a correction of the visit's start or end event (see
:mod:`connectors.health.hl7_lifecycle`), mapped from its own segments like an attendance.
``A40`` merges two records of one patient: it is published as identity evidence, never as an
attendance (:mod:`connectors.health.hl7_merge`); a correction that names no visit is held
(:class:`~connectors.health.exceptions.HeldForCorrection`). Any other message is not used
(:class:`~connectors.health.exceptions.NotUsed`), a training or debugging message (MSH-11
``T``/``D``) is never published (:class:`~connectors.health.exceptions.Training`); adults'
messages and other patient classes carry nothing to publish (:class:`NoEvent`). All of these
are answered ``AA`` and counted by kind; only a message that should be an event and cannot
be mapped is an error (:class:`MappingError`).

Where things are: NHS number in PID-3 (identifier type ``NH`` or assigning authority
``NHS``), else PID-2, spaces and dashes removed; the hospital's own ids in PID-3 (type ``MR``,
``PI`` or ``PT``; issuer PID-3.4 when it is an ODS code, else the publisher), the first as the
local patient id, the others as linked identifiers; name PID-5; birth date PID-7; address
PID-11; ethnicity PID-22; GP practice PD1-3 (XON-10, else XON-3); site PV1-3.4 (else MSH-4,
whichever is an ODS code) and its name PV1-3.9; arrival PV1-44 (else EVN-6, EVN-2);
departure PV1-45; reason for attendance PV2-3.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.exceptions import MappingError, NoEvent
from connectors.health.exceptions import HeldForCorrection, NotUsed, Training
from connectors.health.hl7_lifecycle import (
    CORRECTING_STEPS,
    LOCAL_ID_TYPES,
    MERGING_STEPS,
    NHS_AUTHORITIES,
    PUBLISHED_STEPS,
    AdtStep,
    adt_step,
    visit_event_id,
)
from connectors.health.hl7_merge import merge_event
from connectors.health.hl7v2 import Hl7Message, hl7_time
from connectors.health.lifecycle import with_lifecycle
from connectors.health.profile import HealthProfile
from connectors.runtime.event_builder import build_event, is_child_on
from connectors.runtime.records import SourceRecord

SYSTEM = "hl7v2-adt"
#: An ODS organisation or site code: three to six letters and digits (``RJ1``, ``RJ122``).
ODS_CODE = re.compile(r"[A-Z0-9]{3,6}")
SNOMED_NAMES = frozenset(
    {"SCT", "SNOMED", "SNOMEDCT", "SNM", "http://snomed.info/sct", "2.16.840.1.113883.6.96"}
)


class Hl7Mapper:
    """``map_record`` for HL7 v2 ADT messages.

    Args:
        profile: the health mapping file (publisher, risks, discharge codes, time zone).
    """

    __slots__ = ("profile", "zone")

    def __init__(self, profile: HealthProfile | None = None) -> None:
        self.profile = profile or HealthProfile()
        self.zone = ZoneInfo(self.profile.timezone)

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        """The event for one message; raises ``NoEvent`` or ``MappingError`` (see the module doc)."""
        msg: Hl7Message = record.data
        kind, trigger = msg.get("MSH", 9, 1), (msg.get("MSH", 9, 2) or "").upper()
        if msg.processing_id in ("T", "D"):
            reason = "The message is a training or debugging one (MSH-11 is T or D)."
            raise Training(reason)
        step = adt_step(msg, trigger) if (kind or "").upper() == "ADT" else None
        if step is None:
            reason = "The message type is not one of the ADT lifecycle this connector uses."
            raise NotUsed(reason)
        if step.step in MERGING_STEPS:
            return self._merge(record, msg, step)
        correcting = CORRECTING_STEPS.get(step.step)
        corrects = visit_event_id(record.connector, step, correcting[1]) if correcting else None
        if step.step not in PUBLISHED_STEPS and corrects is None:
            reason = f"ADT^{trigger} ({step.step.value}) is held for corrections."
            raise HeldForCorrection(reason, step)
        for segment in ("PID", "PV1"):
            if not msg.has(segment):
                reason = f"The message has no {segment} segment."
                raise MappingError(reason)
        if (msg.get("PV1", 2) or "").strip().upper() != "E":
            reason = "The visit is not an emergency one (PV1-2 is not E)."
            raise NoEvent(reason)
        arrival = self._time(msg, "PV1", 44) or self._time(msg, "EVN", 6) or self._time(msg, "EVN", 2)
        if arrival is None:
            reason = "PV1-44 (admit date/time) is missing, and EVN gives no time either."
            raise MappingError(reason)
        born = self._time(msg, "PID", 7)
        child = is_child_on(born.date() if born else None, arrival)
        if child is None:
            reason = "PID-7 (date of birth) is missing, so whether the patient is a child is unknown."
            raise MappingError(reason)
        if not child:
            reason = "The patient is 18 or over."
            raise NoEvent(reason)
        site = _ods_code(msg.get("PV1", 3, 4)) or _ods_code(msg.get("MSH", 4))
        if site is None:
            reason = "Neither PV1-3.4 nor MSH-4 is an ODS code, so the site is unknown."
            raise MappingError(reason)
        site_name = msg.get("PV1", 3, 9) or self.profile.organisation_name or site
        code, text, system = msg.get("PV2", 3, 1), msg.get("PV2", 3, 2), msg.get("PV2", 3, 3)
        outcome = (
            "ADMITTED"
            if trigger == "A01"
            else self.profile.discharge_codes.get(msg.get("PV1", 36) or "")
            if trigger == "A03"
            else None
        )
        details = {
            "arrival_at": arrival,
            "site_ods_code": site,
            "site_name": site_name,
            "setting": self.profile.setting,
            "departed_at": self._time(msg, "PV1", 45),
            "attendance_reason": text,
            "attendance_reason_code": code if system in SNOMED_NAMES else None,
            "discharge_outcome": outcome,
        }
        profile = self.profile
        organisation = profile.organisation or site
        source = self._source(msg, organisation, site_name)
        recorded = self._time(msg, "EVN", 2) or self._time(msg, "MSH", 7)
        event = build_event(
            record,
            event_type="EMERGENCY_ATTENDANCE",
            occurred_at=arrival,
            recorded_at=recorded,
            source=source,
            risk=profile.risk_for("EMERGENCY_ATTENDANCE"),
            child=self._child(msg, born, organisation),
            details=details,
        )
        # A correction keeps its own id (a resend is the same) and names the visit's event.
        return with_lifecycle(event, step.step, corrects or visit_event_id(record.connector, step, step.step))

    def _merge(self, record: SourceRecord, msg: Hl7Message, step: AdtStep) -> dict[str, Any]:
        """An A40's merge event (:mod:`connectors.health.hl7_merge`): identity evidence only."""
        at = self._time(msg, "EVN", 2) or self._time(msg, "MSH", 7)
        site = _ods_code(msg.get("MSH", 4)) or _ods_code(self.profile.organisation)
        if at is None or site is None:
            reason = "The A40 gives no time (EVN-2, MSH-7) or no ODS code (MSH-4) for the hospital."
            raise MappingError(reason)
        organisation = self.profile.organisation or site
        return merge_event(
            record,
            step,
            at=at,
            born=self._time(msg, "PID", 7),
            site=site,
            issuer=organisation,
            source=self._source(msg, organisation, self.profile.organisation_name or site),
            setting=self.profile.setting,
        )

    def _source(self, msg: Hl7Message, organisation: str, name: str) -> dict[str, Any]:
        control_id, profile = msg.control_id, self.profile
        return {
            "agency": "HEALTH",
            "organisation": organisation,
            "organisation_name": profile.organisation_name or name,
            "system": profile.system or SYSTEM,
            "record_id": control_id,
            "contact": profile.contact.model_dump() | {"reference": control_id} if profile.contact else None,
        }

    def _time(self, msg: Hl7Message, segment: str, field: int) -> datetime | None:
        return hl7_time(msg.get(segment, field), f"{segment}-{field}", self.zone)

    def _child(self, msg: Hl7Message, born: datetime | None, organisation: str) -> dict[str, Any]:
        nhs = None
        local: list[tuple[str, str]] = []  # (issuer ODS code, id): the hospital's own patient ids
        for rep in range(1, msg.repetitions("PID", 3) + 1):
            kind, authority = msg.get("PID", 3, 5, rep), msg.get("PID", 3, 4, rep)
            value = msg.get("PID", 3, 1, rep)
            if kind == "NH" or authority in NHS_AUTHORITIES:
                nhs = nhs or value
            elif value and (kind or "").upper() in LOCAL_ID_TYPES:
                local.append((_ods_code(authority) or organisation, value.strip()))
        nhs = nhs or msg.get("PID", 2)
        if nhs is not None:
            nhs = re.sub(r"[\s-]", "", nhs)  # written 999 123 4567 or 999-123-4567
        street, other, town, postcode = (msg.get("PID", 11, i) for i in (1, 2, 3, 5))
        return {
            "nhs_number": nhs,
            "family_name": msg.get("PID", 5, 1),
            "given_name": msg.get("PID", 5, 2),
            "date_of_birth": born.date() if born else None,
            "ethnicity": msg.get("PID", 22, 1),
            "address": {"line1": street, "line2": other, "town": town, "postcode": postcode}
            if any((street, other, town, postcode))
            else None,
            "gp_practice_ods": msg.get("PD1", 3, 10) or msg.get("PD1", 3, 3),
            # A patient without an NHS number is keyed by the first local id; every identifier PID-3
            # holds is the hospital's own cross-reference, which the filter links (principle 11).
            "local_patient_id": local[0][1] if local else None,
            "local_patient_id_issuer": local[0][0] if local else None,
            "linked_identifiers": [f"lpi:{issuer}:{value}" for issuer, value in local[1:]] or None,
        }


def _ods_code(value: str | None) -> str | None:
    """The value as an ODS code in upper case, or None when it is not one."""
    if value is None:
        return None
    code = value.strip().upper()
    return code if ODS_CODE.fullmatch(code) else None
