"""Synthetic test data: invented children, NHS numbers from the 999 test range."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.runtime.dry_run import DryRunDelivery
from connectors.runtime.records import SourceRecord
from schemas.blank import blank_details
from schemas.identifiers import synthetic_nhs_number

RNG = random.Random(20261123)


def domestic_abuse_incident(
    *,
    born: date = date(2015, 6, 1),
    risk: str = "NEEDS_SUPPORT",
    la: str = "202",
    school: str | None = "100000",
    gp: str | None = "F83004",
    confidential_address: bool = True,
    occurred: datetime | None = None,
) -> dict[str, Any]:
    """A complete police DOMESTIC_ABUSE_INCIDENT about one synthetic child."""
    occurred = occurred or datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "DOMESTIC_ABUSE_INCIDENT",
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(hours=1),
        "source": {
            "agency": "POLICE",
            "organisation": "metropolitan",
            "organisation_name": "Metropolitan Police Service",
            "system": "test",
            "record_id": "INC-1",
            "contact": {
                "team": "PPU test team",
                "phone": "020 7946 0999",
                "email": None,
                "reference": "CAD-77",
            },
        },
        "risk": risk,
        "child": {
            "nhs_number": synthetic_nhs_number(RNG),
            "upn": None,
            "la_child_id": None,
            "police_person_reference": f"TP-{uuid.uuid4().hex[:8].upper()}",  # one per record: a shared one links children
            "local_patient_id": None,
            "local_patient_id_issuer": None,
            "linked_identifiers": None,
            "given_name": "Testy",
            "family_name": "Childe",
            "date_of_birth": born,
            "ethnicity": "WBRI",
            "address": {"line1": "1 Synthetic Row", "line2": None, "town": "Testford", "postcode": "LS1 4AP"},
            "confidential_address": (
                {"line1": "Refuge Synthetic", "line2": None, "town": "Testford", "postcode": "LS2 9ZZ"}
                if confidential_address
                else None
            ),
            "school_urn": school,
            "gp_practice_ods": gp,
            "local_authority_code": la,
        },
        "related_people": [
            {
                "role": "ALLEGED_PERPETRATOR",
                "relationship_to_child": "stepfather",
                "given_name": "Adult",
                "family_name": "Synthetic",
                "date_of_birth": date(1985, 1, 1),
                "address": None,
            }
        ],
        "details": {
            "incident_at": occurred,
            "child_present": True,
            "child_injured": False,
            "offence_types": ["Common assault"],
            "dash_risk_level": "MEDIUM",
            "arrest_made": True,
            "protective_measures": "DVPN issued",
        },
        "narrative": "Synthetic narrative text SECRET-NARRATIVE-1.",
        "withheld_fields": [],
        "generalised_fields": {},
    }


_USED_NHS: set[str] = set()


def distinct_children(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every event its own child (synthetic NHS numbers are random, and a repeat would
    make the filter remember one child's school for another event)."""
    for event in events:
        number = event["child"]["nhs_number"]
        while number in _USED_NHS:
            number = synthetic_nhs_number(RNG)
        _USED_NHS.add(number)
        event["child"]["nhs_number"] = number
    return events


def details(event_type: str, **values: Any) -> dict[str, Any]:
    """A details record for ``event_type``: required fields filled plainly, the rest null, then ``values``."""
    record = blank_details(event_type)
    record.update(values)
    return record


AGENCY_OF = {
    "EMERGENCY_ATTENDANCE": "HEALTH",
    "HEALTH_SAFEGUARDING_CONCERN": "HEALTH",
    "WAS_NOT_BROUGHT": "HEALTH",
    "DOMESTIC_ABUSE_INCIDENT": "POLICE",
    "MISSING_EPISODE": "POLICE",
    "EXPLOITATION_CONCERN": "POLICE",
    "SCHOOL_SAFEGUARDING_CONCERN": "EDUCATION",
    "ATTENDANCE_ALERT": "EDUCATION",
    "CHILD_MISSING_EDUCATION": "EDUCATION",
    "REFERRAL_OUTCOME": "LOCAL_AUTHORITY",
    "CHILD_PROTECTION_PLAN": "LOCAL_AUTHORITY",
    "LOOKED_AFTER_STATUS": "LOCAL_AUTHORITY",
    "FAMILY_HELP_CASE": "LOCAL_AUTHORITY",
    "STRATEGY_DISCUSSION": "LOCAL_AUTHORITY",
}


def event(
    event_type: str,
    *,
    risk: str = "NEEDS_SUPPORT",
    agency: str | None = None,
    detail_values: dict[str, Any] | None = None,
    **child: Any,
) -> dict[str, Any]:
    """An event of any type about the standard synthetic child (``child`` overrides its fields)."""
    base = domestic_abuse_incident(risk=risk)
    base["event_type"] = event_type
    base["source"] = {**base["source"], "agency": agency or AGENCY_OF[event_type]}
    base["child"] = {**base["child"], **child}
    base["details"] = details(event_type, **(detail_values or {}))
    return base


class KeepingDelivery(DryRunDelivery):
    """The dry-run delivery (no Kafka), keeping each published event too, for connector tests."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        super().publish(record, event)
        self.events.append(event)
