"""Synthetic test data: invented children, NHS numbers from the 999 test range."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.identifiers import synthetic_nhs_number

RNG = random.Random(20261123)


def domestic_abuse_incident(*, born: date = date(2015, 6, 1), risk: str = "NEEDS_SUPPORT", la: str = "202",
                            school: str | None = "100000", gp: str | None = "F83004",
                            confidential_address: bool = True, occurred: datetime | None = None) -> dict[str, Any]:
    """A complete police DOMESTIC_ABUSE_INCIDENT about one synthetic child."""
    occurred = occurred or datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "DOMESTIC_ABUSE_INCIDENT",
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(hours=1),
        "source": {
            "agency": "POLICE", "organisation": "metropolitan", "organisation_name": "Metropolitan Police Service",
            "system": "test", "record_id": "INC-1",
            "contact": {"team": "PPU test team", "phone": "020 7946 0999", "email": None, "reference": "CAD-77"},
        },
        "risk": risk,
        "child": {
            "nhs_number": synthetic_nhs_number(RNG), "upn": None, "la_child_id": None,
            "police_person_reference": "TP-0001", "given_name": "Testy", "family_name": "Childe",
            "date_of_birth": born, "ethnicity": "WBRI",
            "address": {"line1": "1 Synthetic Row", "line2": None, "town": "Testford", "postcode": "LS1 4AP"},
            "confidential_address": ({"line1": "Refuge Synthetic", "line2": None, "town": "Testford",
                                      "postcode": "LS2 9ZZ"} if confidential_address else None),
            "school_urn": school, "gp_practice_ods": gp, "local_authority_code": la,
        },
        "related_people": [{
            "role": "ALLEGED_PERPETRATOR", "relationship_to_child": "stepfather", "given_name": "Adult",
            "family_name": "Synthetic", "date_of_birth": date(1985, 1, 1), "address": None,
        }],
        "details": {
            "incident_at": occurred, "child_present": True, "child_injured": False,
            "offence_types": ["Common assault"], "dash_risk_level": "MEDIUM", "arrest_made": True,
            "protective_measures": "DVPN issued",
        },
        "narrative": "Synthetic narrative text SECRET-NARRATIVE-1.",
        "withheld_fields": [],
        "generalised_fields": {},
    }
