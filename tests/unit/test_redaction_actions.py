"""REMOVE, MASK, GENERALISE and PSEUDONYMISE, chosen by the rule's action for ungranted tags."""

from __future__ import annotations

from datetime import date

from factories import domestic_abuse_incident

import schemas
from consent.engine import Engine
from consent.policy import parse
from consent.redaction import age_in_years, mask_text, outward_code
from consent.state import ChildState

POLICY = """
name: actions
version: "1"
rules:
  - id: school-actions
    description: test of redaction actions
    event_types: [DOMESTIC_ABUSE_INCIDENT]
    audience: SCHOOL_DSL
    grant: [NAME]
    actions: {CONTACT: MASK, DATE_OF_BIRTH: GENERALISE, IDENTIFIER: PSEUDONYMISE, CONFIDENTIAL_ADDRESS: MASK}
    lawful_basis: PUBLIC_TASK_SAFEGUARDING
"""


def school_copy(event: dict, key: bytes = b"k" * 32):  # type: ignore[no-untyped-def,type-arg]
    engine = Engine(parse(POLICY), schemas.load("SafeguardingEvent"), key, lambda a, o: True)
    return next(d for d in engine.decide(event, ChildState()) if d.audience == "SCHOOL_DSL")


def test_mask_keeps_the_postcode_outward_code_and_the_shape_of_other_lines() -> None:
    decision = school_copy(domestic_abuse_incident())
    address = decision.event["child"]["address"]
    assert address["postcode"] == "LS1"
    assert address["line1"] == "* ********* ***"
    assert "child.address.postcode" in decision.transformed_fields


def test_generalise_turns_date_of_birth_into_age_at_the_event() -> None:
    decision = school_copy(domestic_abuse_incident(born=date(2015, 6, 1)))
    assert decision.event["child"]["date_of_birth"] is None
    assert decision.event["generalised_fields"] == {"child.date_of_birth": "11 years"}


def test_pseudonymise_is_stable_per_recipient_and_keyed() -> None:
    event = domestic_abuse_incident()
    first = school_copy(event).event["child"]["nhs_number"]
    again = school_copy(event).event["child"]["nhs_number"]
    other_key = school_copy(event, key=b"z" * 32).event["child"]["nhs_number"]
    assert first == again and first.startswith("pseud-") and event["child"]["nhs_number"] not in first
    assert other_key != first


def test_a_prohibited_tag_is_removed_whatever_the_action() -> None:
    decision = school_copy(domestic_abuse_incident())
    assert decision.event["child"]["confidential_address"] is None
    assert "child.confidential_address" in decision.removed_fields


def test_helpers() -> None:
    assert outward_code("sw1a 1aa") == "SW1A"
    assert outward_code("not a postcode") == "*** * ********"
    assert mask_text("AB-12") == "**-**"
    assert age_in_years(date(2020, 2, 29), date(2026, 2, 28)) == 5
    assert age_in_years(date(2020, 2, 29), date(2026, 3, 1)) == 6
