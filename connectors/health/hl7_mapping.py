"""HL7 v2 ADT messages to ``EMERGENCY_ATTENDANCE`` events: the health connector's mapping
function for HL7 v2 (files or MLLP).

Read: ``ADT^A04`` (registration), ``ADT^A01`` (admission) and ``ADT^A03`` (discharge) whose
patient class (PV1-2) is ``E``, emergency. Each message is one event: an A04 says the
child arrived, an A01 that they were admitted, an A03 that they left (PV1-45, with PV1-36
through the profile's ``discharge_codes``). Adults' messages and other patient classes
carry nothing to publish (:class:`NoEvent`); other message types are refused
(:class:`MappingError`), since an integration engine should not route them here.

Where things are: NHS number in PID-3 (identifier type ``NH`` or assigning authority
``NHS``), else PID-2; name PID-5; birth date PID-7; address PID-11; ethnicity PID-22; GP
practice PD1-3 (XON-10, else XON-3); site PV1-3.4 (else MSH-4) and its name PV1-3.9; arrival
PV1-44 (else EVN-6, EVN-2); departure PV1-45; reason for attendance PV2-3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.exceptions import MappingError, NoEvent
from connectors.health.hl7v2 import Hl7Message, hl7_time
from connectors.health.profile import HealthProfile
from connectors.runtime.event_builder import build_event, is_child_on
from connectors.runtime.records import SourceRecord

SYSTEM = "hl7v2-adt"
TRIGGERS = ("A01", "A03", "A04")
NHS_AUTHORITIES = frozenset({"NHS", "NHSNBR", "2.16.840.1.113883.2.1.4.1"})
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
        kind, trigger = msg.get("MSH", 9, 1), msg.get("MSH", 9, 2)
        if kind != "ADT" or trigger not in TRIGGERS:
            reason = "The message is not ADT^A01, ADT^A03 or ADT^A04, the only types this connector reads."
            raise MappingError(reason)
        for segment in ("PID", "PV1"):
            if not msg.has(segment):
                reason = f"The message has no {segment} segment."
                raise MappingError(reason)
        if msg.get("PV1", 2) != "E":
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
        site = msg.get("PV1", 3, 4) or msg.get("MSH", 4)
        if site is None:
            reason = "Neither PV1-3.4 nor MSH-4 names the site."
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
        control_id = msg.control_id
        profile = self.profile
        organisation = profile.organisation or site
        source = {
            "agency": "HEALTH",
            "organisation": organisation,
            "organisation_name": profile.organisation_name or site_name,
            "system": profile.system or SYSTEM,
            "record_id": control_id,
            "contact": profile.contact.model_dump() | {"reference": control_id} if profile.contact else None,
        }
        recorded = self._time(msg, "EVN", 2) or self._time(msg, "MSH", 7)
        return build_event(
            record,
            event_type="EMERGENCY_ATTENDANCE",
            occurred_at=arrival,
            recorded_at=recorded,
            source=source,
            risk=profile.risk_for("EMERGENCY_ATTENDANCE"),
            child=self._child(msg, born),
            details=details,
        )

    def _time(self, msg: Hl7Message, segment: str, field: int) -> datetime | None:
        return hl7_time(msg.get(segment, field), f"{segment}-{field}", self.zone)

    def _child(self, msg: Hl7Message, born: datetime | None) -> dict[str, Any]:
        nhs = None
        for rep in range(1, msg.repetitions("PID", 3) + 1):
            kind, authority = msg.get("PID", 3, 5, rep), msg.get("PID", 3, 4, rep)
            if kind == "NH" or authority in NHS_AUTHORITIES:
                nhs = msg.get("PID", 3, 1, rep)
                break
        nhs = nhs or msg.get("PID", 2)
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
        }
