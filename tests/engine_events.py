"""Events for the engine tests, as agencies send them: a child with every identifier, a flag
(plan, looked-after status) and a school attendance record, all synthetic; and the answer
`sgb policy evaluate` gives for one."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

from factories import event

from consent.explain import explain
from consent.policy import load
from consent.state import ChildState
from schemas.identifiers import synthetic_nhs_number, synthetic_upn
from schemas.jsonform import to_json
from schemas.topics import load_declaration

RNG = random.Random(16)
NHS = synthetic_nhs_number(RNG)
CONTACT = {"team": "Synthetic LA front door", "phone": "020 7946 0000", "email": None, "reference": "REF-9"}
T1 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def full_child(**overrides: Any) -> dict[str, Any]:
    """Every child field filled: identifiers of all four kinds, names, contact, routing."""
    child = {
        "nhs_number": NHS,
        "upn": synthetic_upn(RNG, "202"),
        "la_child_id": "LA-CHILD-77",
        "police_person_reference": "TP-0001",
        "given_name": "Testy",
        "family_name": "Childe",
        "date_of_birth": date(2015, 6, 1),
        "ethnicity": "WBRI",
        "address": {"line1": "1 Synthetic Row", "line2": "Flat 2", "town": "Testford", "postcode": "LS1 4AP"},
        "confidential_address": {"line1": "Refuge", "line2": None, "town": "Testford", "postcode": "LS2 9ZZ"},
        "school_urn": "100000",
        "gp_practice_ods": "F83004",
        "local_authority_code": "202",
    }
    child.update(overrides)
    return child


def flag_event(event_type: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "change": "STARTED",
        "start_date": date(2026, 10, 1),
        "end_date": date(2027, 10, 1),
        "responsible_local_authority_code": "202",
        "responsible_contact": CONTACT,
    }
    if event_type == "CHILD_PROTECTION_PLAN":
        values |= {
            "next_review_date": date(2026, 12, 1),
            "category_of_abuse": "NEGLECT",
            "plan_summary": "Plan.",
        }
    else:
        values |= {
            "legal_status": "C2",
            "category_of_need": "N1",
            "placement_type": "U1",
            "placed_out_of_area": True,
            "placement_local_authority_code": "203",
            "placement_address": {"line1": "Placement", "line2": None, "town": "T", "postcode": "LS3 1AA"},
            "unaccompanied_asylum_seeking": False,
            "reason_ended": "E11",
        }
    ev = event(event_type, detail_values=values)
    ev["child"] = full_child()
    return ev


def attendance(risk: str = "NEEDS_SUPPORT") -> dict[str, Any]:
    ev = event(
        "EMERGENCY_ATTENDANCE",
        risk=risk,
        detail_values={
            "arrival_at": datetime(2026, 11, 21, 2, 10, tzinfo=UTC),
            "site_ods_code": "RRV03",
            "site_name": "Synthetic ED",
            "setting": "EMERGENCY_DEPARTMENT",
            "departed_at": datetime(2026, 11, 21, 5, 0, tzinfo=UTC),
            "attendance_reason": "Head injury (synthetic)",
            "attendance_reason_code": "82271004",
            "injury_mechanism": "fall (synthetic)",
            "injury_intent": "ASSAULT",
            "discharge_outcome": "DISCHARGED_HOME",
            "safeguarding_flag_seen": True,
            "safeguarding_concern_raised": True,
            "previous_attendances_12_months": 3,
            "accompanied_by": "mother",
        },
    )
    ev["child"] = full_child()
    return ev


def as_json(ev: dict[str, Any]) -> Any:
    return to_json(ev)


def evaluate(ev: Any, state: ChildState | None = None) -> dict[str, Any]:
    return explain(load(), ev, state or ChildState(), load_declaration(), b"k" * 32)
