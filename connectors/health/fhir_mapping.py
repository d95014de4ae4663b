"""FHIR R4 (UK Core) resources to events: the health connector's mapping function for FHIR.

* ``Encounter`` with class ``EMER`` -> ``EMERGENCY_ATTENDANCE`` (``period.start`` is the arrival);
* ``Flag``, ``Condition`` or ``Observation`` coded as a safeguarding concern (the profile's
  SNOMED CT codes) -> ``HEALTH_SAFEGUARDING_CONCERN``;
* ``Appointment`` with status ``noshow`` -> ``WAS_NOT_BROUGHT`` (one missed appointment);
* each event's id is the resource's identity, a later version is an ``AMENDED`` correction
  and ``entered-in-error`` (an Encounter's or Observation's ``cancelled``) a ``RETRACTED``
  one (:mod:`connectors.health.fhir_lifecycle`);
* Patients, Organizations and Locations are read for context, other encounters and adults'
  records carry nothing -> :class:`NoEvent`; resource types the connector does not read and
  request-only batch entries -> :class:`~connectors.health.exceptions.NotUsed`.

The child comes from the Patient the resource refers to (``Patient/id``, an absolute URL,
a ``fullUrl``, a logical reference by identifier or a conditional reference
``Patient?identifier=system|value``), found in the reader's context. Pure: no I/O, errors
name FHIR elements, never their values.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from connectors.exceptions import MappingError, NoEvent
from connectors.health.exceptions import NotUsed
from connectors.health.fhir_lifecycle import retracted, with_resource_lifecycle
from connectors.health.fhir_model import (
    ACT_CODE_SYSTEM,
    ETHNIC_CATEGORY_URL,
    ODS_ORGANISATION_SYSTEM,
    ODS_SITE_SYSTEM,
    SNOMED_SYSTEM,
    Appointment,
    CodeableConcept,
    Condition,
    Encounter,
    Flag,
    Identifier,
    Location,
    Observation,
    Organization,
    OtherResource,
    Patient,
    Reference,
    Resource,
)
from connectors.health.fhir_patients import find_patient
from connectors.health.fhir_reader import FhirContext, Unused
from connectors.health.profile import HealthProfile
from connectors.runtime.event_builder import build_event, is_child_on
from connectors.runtime.records import SourceRecord

SYSTEM = "fhir-r4"
#: ``[base/]Type/id[/_history/n]``: the type and id of a literal reference.


def fhir_datetime(value: str | None, element: str, zone: ZoneInfo) -> datetime | None:
    """A FHIR ``dateTime`` (or ``date``) as a zoned time; a bare date is local midnight."""
    if value is None:
        return None
    try:
        if "T" in value:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                msg = f"{element} has a time but no time zone."
                raise MappingError(msg)
            return parsed
        parts = value.split("-")
        day = date(
            int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1
        )
    except (ValueError, IndexError):
        msg = f"{element} is not a FHIR dateTime."
        raise MappingError(msg) from None
    return datetime.combine(day, time(), zone)


def _ods(identifier: Identifier | None) -> str | None:
    if identifier is not None and identifier.system in (ODS_ORGANISATION_SYSTEM, ODS_SITE_SYSTEM):
        return identifier.value
    return None


def _snomed(concepts: list[CodeableConcept | None]) -> list[str]:
    return [
        c.code for cc in concepts if cc is not None for c in cc.coding if c.system == SNOMED_SYSTEM and c.code
    ]


class FhirMapper:
    """``map_record`` for FHIR R4 resources.

    Args:
        profile: the health mapping file (publisher, risks, safeguarding codes).
    """

    __slots__ = ("profile", "zone")

    def __init__(self, profile: HealthProfile | None = None) -> None:
        self.profile = profile or HealthProfile()
        self.zone = ZoneInfo(self.profile.timezone)

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        """The event for one resource; raises ``NoEvent`` or ``MappingError`` (see the module doc)."""
        if isinstance(record.data, Unused):
            raise NotUsed(record.data.reason)
        resource: Resource = record.data
        context: FhirContext = record.context
        if isinstance(resource, Encounter):
            return self._attendance(record, resource, context)
        if isinstance(resource, (Flag, Condition, Observation)):
            return self._concern(record, resource, context)
        if isinstance(resource, Appointment):
            return self._not_brought(record, resource, context)
        if isinstance(resource, (Patient, Organization, Location)):
            msg = f"A {resource.resourceType} is read for context, not published."
            raise NoEvent(msg)
        kind = "resource type" if isinstance(resource, OtherResource) else "resource"
        msg = f"A {resource.resourceType} is a {kind} this connector does not read."
        raise NotUsed(msg)

    # -- event types ---------------------------------------------------------------------------
    def _attendance(self, record: SourceRecord, enc: Encounter, context: FhirContext) -> dict[str, Any]:
        if enc.class_.code != "EMER" or enc.class_.system not in (None, ACT_CODE_SYSTEM):
            msg = "The Encounter is not an emergency encounter (class EMER)."
            raise NoEvent(msg)
        if enc.status == "planned":  # cancelled or entered in error: a retraction (fhir_lifecycle)
            msg = f"The Encounter's status is {enc.status}."
            raise NoEvent(msg)
        arrival = fhir_datetime(enc.period.start if enc.period else None, "Encounter.period.start", self.zone)
        if arrival is None:
            msg = "Encounter.period.start (the arrival) is missing."
            raise MappingError(msg)
        patient = self._patient(enc.subject, "Encounter.subject", context, arrival)
        site_code, site_name = self._site(enc, context)
        reason = enc.reasonCode[0] if enc.reasonCode else None
        reason_coding = reason.code_in(SNOMED_SYSTEM) if reason else None
        disposition = enc.hospitalization.dischargeDisposition if enc.hospitalization else None
        discharge = self._discharge(disposition)
        details = {
            "arrival_at": arrival,
            "site_ods_code": site_code,
            "site_name": site_name,
            "setting": self.profile.setting,
            "departed_at": fhir_datetime(
                enc.period.end if enc.period else None, "Encounter.period.end", self.zone
            ),
            "attendance_reason": (reason_coding.display if reason_coding else None)
            or (reason.text if reason else None),
            "attendance_reason_code": reason_coding.code if reason_coding else None,
            "discharge_outcome": discharge,
        }
        return self._event(
            record, enc, "EMERGENCY_ATTENDANCE", arrival, patient, details, site_code, site_name
        )

    def _concern(
        self, record: SourceRecord, res: Flag | Condition | Observation, context: FhirContext
    ) -> dict[str, Any]:
        codes = _snomed([res.code, *res.category])
        if not any(self.profile.is_safeguarding_code(code) for code in codes):
            msg = f"The {res.resourceType} is not coded as a safeguarding concern."
            raise NoEvent(msg)
        notes: list[str] = []
        if isinstance(res, Flag):
            if res.status != "active" and not retracted(res):
                msg = "The Flag is not active."
                raise NoEvent(msg)
            when = res.period.start if res.period else None
        elif isinstance(res, Condition):
            if res.verification == "refuted":
                msg = "The Condition's verification status is refuted."
                raise NoEvent(msg)
            when = res.onsetDateTime or res.recordedDate
            notes = [n.text for n in res.note if n.text]
        else:
            when = res.effectiveDateTime or res.issued
            notes = [n.text for n in res.note if n.text] + ([res.valueString] if res.valueString else [])
        occurred = fhir_datetime(when, f"{res.resourceType} date", self.zone) or self._last_updated(res)
        if occurred is None:
            msg = f"The {res.resourceType} says nowhere when the concern arose."
            raise MappingError(msg)
        patient = self._patient(res.subject, f"{res.resourceType}.subject", context, occurred)
        categories = sorted({self.profile.concern_codes[c] for c in codes if c in self.profile.concern_codes})
        details = {"concern_categories": categories, "clinical_findings": "\n".join(notes) or None}
        return self._event(record, res, "HEALTH_SAFEGUARDING_CONCERN", occurred, patient, details, None, None)

    def _not_brought(self, record: SourceRecord, appt: Appointment, context: FhirContext) -> dict[str, Any]:
        if appt.status != "noshow" and not retracted(appt):
            msg = "The Appointment's status is not noshow."
            raise NoEvent(msg)
        start = fhir_datetime(appt.start, "Appointment.start", self.zone)
        if start is None:
            msg = "Appointment.start is missing."
            raise MappingError(msg)
        actors = [p.actor for p in appt.participant if p.actor is not None]
        subject = next(
            (
                a
                for a in actors
                if (a.reference or "").startswith("Patient/")
                or (a.identifier is not None and a.identifier.system and "nhs-number" in a.identifier.system)
            ),
            None,
        )
        patient = self._patient(subject, "Appointment.participant (Patient)", context, start)
        provider = (
            next((_ods(a.identifier) for a in actors if _ods(a.identifier)), None)
            or self.profile.organisation
        )
        services = appt.specialty or appt.serviceType
        service = services[0] if services else None
        specialty = None
        if service is not None:
            specialty = service.text or next((c.display for c in service.coding if c.display), None)
        day = start.astimezone(self.zone).date()
        details = {
            "period_start": day,
            "period_end": day,
            "appointments_missed": 1,
            "missed_appointments": [
                {"appointment_date": day, "specialty": specialty, "provider_ods_code": provider}
            ],
        }
        return self._event(record, appt, "WAS_NOT_BROUGHT", start, patient, details, provider, None)

    # -- shared parts ----------------------------------------------------------------------------
    def _patient(self, ref: Reference | None, element: str, context: FhirContext, at: datetime) -> Patient:
        """The child the resource is about, or NoEvent for an adult."""
        if ref is None:
            msg = f"{element} is missing."
            raise MappingError(msg)
        patient = find_patient(ref, context)
        if patient is None:
            msg = (
                f"{element} refers to a Patient that is not in the file or its folder "
                "(or not among the patients_in_memory most recently used)."
            )
            raise MappingError(msg)
        born = fhir_datetime(patient.birthDate, "Patient.birthDate", self.zone)
        child = is_child_on(born.date() if born else None, at)
        if child is None:
            msg = "The Patient has no birthDate, so whether they are a child is unknown."
            raise MappingError(msg)
        if not child:
            msg = "The Patient is 18 or over."
            raise NoEvent(msg)
        return patient

    def _site(self, enc: Encounter, context: FhirContext) -> tuple[str, str]:
        provider = enc.serviceProvider
        organisation = context.organisations.get(provider.reference) if provider else None
        code = _ods(provider.identifier) if provider else None
        code = code or (
            next((_ods(i) for i in organisation.identifier if _ods(i)), None) if organisation else None
        )
        name = (organisation.name if organisation else None) or (provider.display if provider else None)
        for entry in enc.location:
            location = context.locations.get(entry.location.reference)
            code = (
                code
                or _ods(entry.location.identifier)
                or (next((_ods(i) for i in location.identifier if _ods(i)), None) if location else None)
            )
            name = name or (location.name if location else None) or entry.location.display
        if code is None and self.profile.organisation is not None:
            return self.profile.organisation, self.profile.organisation_name or self.profile.organisation
        if code is None:
            msg = (
                "The Encounter names no site with an ODS code (serviceProvider or location), "
                "and the health mapping file names no organisation."
            )
            raise MappingError(msg)
        return code, name or self.profile.organisation_name or code

    def _discharge(self, disposition: CodeableConcept | None) -> str | None:
        """The outcome of the first coding the mapping knows, ``system|code`` before a bare code."""
        codes = self.profile.discharge_codes
        for coding in disposition.coding if disposition else []:
            if coding.code is None:
                continue
            found = codes.get(f"{coding.system}|{coding.code}") or codes.get(coding.code)
            if found is not None:
                return found
        return None

    def _last_updated(self, res: Resource) -> datetime | None:
        return fhir_datetime(res.meta.lastUpdated if res.meta else None, "meta.lastUpdated", self.zone)

    def _event(
        self,
        record: SourceRecord,
        res: Resource,
        event_type: str,
        occurred: datetime,
        patient: Patient,
        details: dict[str, Any],
        site_code: str | None,
        site_name: str | None,
    ) -> dict[str, Any]:
        profile = self.profile
        organisation = profile.organisation or site_code
        if organisation is None:
            msg = "The record names no publishing organisation; set organisation in the health mapping file."
            raise MappingError(msg)
        source = {
            "agency": "HEALTH",
            "organisation": organisation,
            "organisation_name": profile.organisation_name or site_name or organisation,
            "system": profile.system or SYSTEM,
            "record_id": res.label if res.id else None,
            "contact": profile.contact.model_dump() | {"reference": res.label if res.id else None}
            if profile.contact
            else None,
        }
        event = build_event(
            record,
            event_type=event_type,
            occurred_at=occurred,
            recorded_at=self._last_updated(res) or occurred,
            source=source,
            risk=profile.risk_for(event_type),
            child=self._child(patient, organisation),
            details=details,
        )
        return with_resource_lifecycle(event, record, res, organisation)

    def _child(self, patient: Patient, organisation: str) -> dict[str, Any]:
        name = next(
            (n for n in patient.name if n.use == "official"), patient.name[0] if patient.name else None
        )
        home = next(
            (a for a in patient.address if a.use == "home"), patient.address[0] if patient.address else None
        )
        gp = next((_ods(r.identifier) for r in patient.generalPractitioner if _ods(r.identifier)), None)
        ethnicity = next(
            (
                e.valueCodeableConcept.coding[0].code
                for e in patient.extension
                if e.url == ETHNIC_CATEGORY_URL and e.valueCodeableConcept and e.valueCodeableConcept.coding
            ),
            None,
        )
        born = fhir_datetime(patient.birthDate, "Patient.birthDate", self.zone)
        local = patient.local_ids(organisation)
        return {
            "nhs_number": patient.nhs_number(),
            # An MRN keys a patient without an NHS number; a Patient with both is the hospital's
            # own cross-reference, which the filter links (principle 11).
            "local_patient_id": local[0][1] if local else None,
            "local_patient_id_issuer": local[0][0] if local else None,
            "linked_identifiers": [f"lpi:{issuer}:{value}" for issuer, value in local[1:]] or None,
            "given_name": name.given[0] if name and name.given else None,
            "family_name": name.family if name else None,
            "date_of_birth": born.date() if born else None,
            "ethnicity": ethnicity,
            "address": {
                "line1": home.line[0] if home.line else None,
                "line2": home.line[1] if len(home.line) > 1 else None,
                "town": home.city,
                "postcode": home.postalCode,
            }
            if home
            else None,
            "gp_practice_ods": gp,
        }
