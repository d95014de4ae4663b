"""Issue 16, as an auditor would try it: a truthful audit (principles 6, 7, 9), and copies that
carry exactly the fields F2 lists. One validation for evaluate and the filter:
test_evaluate_one_validation.py."""

from __future__ import annotations

from typing import Any

import pytest
from engine_events import T1, as_json, attendance, evaluate, flag_event, full_child
from factories import event

import schemas
from consent.audit import decision_entry, withhold
from consent.engine import Decision, Engine
from consent.policy import load, parse
from consent.state import ChildState, Consent
from consent.state_updates import derive
from schemas.topics import load_declaration
from schemas.vocabulary import Audience, Outcome, Reason

ENVELOPE = schemas.load("SafeguardingEvent")
ORGANISATIONS = load_declaration().deliveries.organisations


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(
        load(), ENVELOPE, b"k" * 32, lambda audience, org: org in ORGANISATIONS.get(str(audience), [])
    )


def decide(engine: Engine, ev: dict[str, Any], state: ChildState | None = None) -> dict[Audience, Decision]:
    return {d.audience: d for d in engine.decide(ev, state or ChildState())}


def carried(copy: dict[str, Any], prefix: str) -> set[str]:
    """The dotted paths under ``prefix`` that hold a value in a delivered copy."""
    out: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")
        elif value is not None:
            out.add(path)

    walk(copy[prefix], prefix)
    return out


# -- 2. truthful decisions -----------------------------------------------------------------------
def concern() -> dict[str, Any]:
    return event("SCHOOL_SAFEGUARDING_CONCERN", detail_values={"description": "Synthetic concern."})


def test_consent_state_is_the_covering_consent_never_another_audiences(engine: Engine) -> None:
    state = ChildState(consents=(Consent("GP", "FAMILY_HELP", "GIVEN", "PARENT", T1),))
    decisions = decide(engine, concern(), state)
    family_help = decisions[Audience.FAMILY_HELP]
    assert family_help.outcome is Outcome.WITHHOLD and family_help.reason is Reason.CONSENT_NOT_GIVEN
    assert family_help.consent_state == "NO_RECORD"
    assert all(d.consent_state == "NO_RECORD" for a, d in decisions.items() if a is not Audience.GP)
    assert decisions[Audience.GP].consent_state == "GIVEN"


@pytest.mark.parametrize("first,second", [("GIVEN", "WITHDRAWN"), ("WITHDRAWN", "GIVEN")])
def test_two_consents_recorded_at_the_same_time_the_more_restrictive_wins(
    engine: Engine, first: str, second: str
) -> None:
    state = ChildState()
    for st in (first, second):
        state = state.with_consent(Consent("FAMILY_HELP", "FAMILY_HELP", st, "PARENT", T1, consent_id=st))
    decision = decide(engine, concern(), state)[Audience.FAMILY_HELP]
    assert decision.outcome is Outcome.WITHHOLD and decision.consent_state == "WITHDRAWN"


@pytest.mark.parametrize("order", [("ALL", "FAMILY_HELP"), ("FAMILY_HELP", "ALL")])
def test_a_same_time_tie_between_all_and_one_audience_goes_to_the_restrictive(
    engine: Engine, order: tuple[str, str]
) -> None:
    states = {"ALL": "REFUSED", "FAMILY_HELP": "GIVEN"}
    state = ChildState(consents=tuple(Consent(a, "FAMILY_HELP", states[a], "PARENT", T1) for a in order))
    decision = decide(engine, concern(), state)[Audience.FAMILY_HELP]
    assert decision.outcome is Outcome.WITHHOLD and decision.consent_state == "REFUSED"


def test_withholds_record_no_lawful_basis(engine: Engine) -> None:
    unknown = decide(engine, event("DOMESTIC_ABUSE_INCIDENT", school_urn=None))[Audience.SCHOOL_DSL]
    assert unknown.reason is Reason.RECIPIENT_UNKNOWN and unknown.lawful_basis is None
    not_onboarded = decide(engine, event("DOMESTIC_ABUSE_INCIDENT", school_urn="999999"))[Audience.SCHOOL_DSL]
    assert not_onboarded.reason is Reason.RECIPIENT_NOT_ONBOARDED and not_onboarded.lawful_basis is None
    shared = decide(engine, event("DOMESTIC_ABUSE_INCIDENT"))[Audience.SCHOOL_DSL]
    assert shared.outcome is Outcome.SHARE and shared.lawful_basis is not None
    failed = withhold(shared, Reason.REDACTION_FAILED)  # what the filter does when encoding fails
    assert failed.lawful_basis is None and decision_entry(failed)["lawful_basis"] is None


def test_the_audit_record_says_where_the_organisation_came_from(engine: Engine) -> None:
    named = decide(engine, event("DOMESTIC_ABUSE_INCIDENT"))[Audience.SCHOOL_DSL]
    assert named.organisation == "100000" and decision_entry(named)["organisation_source"] == "EVENT"
    state = derive(event("ATTENDANCE_ALERT", school_urn="100001"), ChildState())
    recorded = decide(engine, event("DOMESTIC_ABUSE_INCIDENT", school_urn=None), state)[Audience.SCHOOL_DSL]
    assert recorded.organisation == "100001" and decision_entry(recorded)["organisation_source"] == "RECORDED"
    unknown = decide(engine, event("DOMESTIC_ABUSE_INCIDENT", school_urn=None))[Audience.SCHOOL_DSL]
    assert decision_entry(unknown)["organisation_source"] is None
    assert evaluate(as_json(event("DOMESTIC_ABUSE_INCIDENT")))["decisions"][0]["organisation_source"]


@pytest.mark.parametrize(
    ("fact", "value", "responsible", "others"),
    [
        (
            "school_urn",
            "100001",
            ["ATTENDANCE_ALERT", "FAMILY_HELP_CASE"],
            ["DOMESTIC_ABUSE_INCIDENT", "WAS_NOT_BROUGHT"],
        ),
        (
            "gp_practice_ods",
            "F83004",
            ["WAS_NOT_BROUGHT"],
            ["DOMESTIC_ABUSE_INCIDENT", "ATTENDANCE_ALERT", "FAMILY_HELP_CASE"],
        ),
        (
            "local_authority_code",
            "202",
            ["FAMILY_HELP_CASE"],
            ["DOMESTIC_ABUSE_INCIDENT", "ATTENDANCE_ALERT", "WAS_NOT_BROUGHT"],
        ),
    ],
)
def test_a_remembered_organisation_comes_only_from_the_agency_responsible_for_it(
    fact: str, value: str, responsible: list[str], others: list[str]
) -> None:
    """Principle 9: the school is remembered from education or local-authority events, the GP
    from health events, the local authority from local-authority events; another agency's
    mention (a police report naming a school) is used for that event only, never remembered."""
    for event_type in responsible:
        assert getattr(derive(event(event_type, **{fact: value}), ChildState()), fact) == value, event_type
    for event_type in others:
        assert getattr(derive(event(event_type, **{fact: value}), ChildState()), fact) is None, event_type
    known = derive(event(responsible[0], **{fact: value}), ChildState())
    for event_type in others:  # nor does it overwrite what the responsible agency said
        assert getattr(derive(event(event_type, **{fact: "999999"}), known), fact) == value, event_type


# -- 3. F2: exactly the fields POLICY.md lists -----------------------------------------------
#: METADATA is always kept (principle 2): the envelope's structure, the source and its contact,
#: and the child's routing codes (organisation codes, not identifiers of the child).
ROUTING = {"child.school_urn", "child.gp_practice_ods", "child.local_authority_code"}
IDENTITY = {"child.nhs_number", "child.given_name", "child.family_name", "child.date_of_birth"}
FLAG_DETAILS = {
    "details.change",
    "details.start_date",
    "details.end_date",
    "details.responsible_local_authority_code",
    *(f"details.responsible_contact.{k}" for k in ("team", "phone", "reference")),
}


@pytest.mark.parametrize("event_type", ["CHILD_PROTECTION_PLAN", "LOOKED_AFTER_STATUS"])
def test_f2_emergency_care_copy_carries_exactly_the_listed_fields(engine: Engine, event_type: str) -> None:
    decision = decide(engine, flag_event(event_type))[Audience.EMERGENCY_CARE]
    assert decision.outcome is Outcome.SHARE and decision.event is not None
    copy = decision.event
    assert carried(copy, "child") == IDENTITY | ROUTING  # no UPN, LA child id, police reference
    extra = {"details.next_review_date"} if event_type == "CHILD_PROTECTION_PLAN" else set()
    assert carried(copy, "details") == FLAG_DETAILS | extra  # plan or status, dates, contact
    assert copy["narrative"] is None and copy["related_people"] == []
    assert {"child.upn", "child.la_child_id", "child.police_person_reference"} <= set(copy["withheld_fields"])


def test_f2_mash_copy_of_a_flagged_childs_attendance_is_who_when_and_where(engine: Engine) -> None:
    state = derive(flag_event("CHILD_PROTECTION_PLAN"), ChildState())
    mash = decide(engine, attendance(), state)[Audience.MASH]
    assert mash.outcome is Outcome.SHARE and mash.event is not None
    assert carried(mash.event, "child") == IDENTITY | ROUTING
    when_and_where = {
        f"details.{k}" for k in ("arrival_at", "site_ods_code", "site_name", "setting", "departed_at")
    }
    assert carried(mash.event, "details") == when_and_where  # no clinical reason below significant harm


def test_f2_significant_harm_brings_the_clinical_reason_injury_intent_included(engine: Engine) -> None:
    state = derive(flag_event("CHILD_PROTECTION_PLAN"), ChildState())
    mash = decide(engine, attendance("SIGNIFICANT_HARM"), state)[Audience.MASH]
    assert mash.event is not None
    details = mash.event["details"]
    assert details["injury_intent"] == "ASSAULT"
    assert details["attendance_reason"] and details["injury_mechanism"] and details["discharge_outcome"]
    assert carried(mash.event, "child") == IDENTITY | ROUTING
    assert details["accompanied_by"] is None  # about a third party, not the clinical reason


def test_named_fields_narrow_and_exclude_inside_records() -> None:
    text = """
name: t
version: "1"
rules:
  - id: school
    description: test
    event_types: [DOMESTIC_ABUSE_INCIDENT]
    audience: SCHOOL_DSL
    grant: [NAME, CONTACT, IDENTIFIER]
    only_fields:
      CONTACT: [child.address.postcode]
      IDENTIFIER: [child.upn]
    exclude_fields: [child.family_name]
    lawful_basis: PUBLIC_TASK_SAFEGUARDING
"""
    narrowed = Engine(parse(text), ENVELOPE, b"k" * 32, lambda a, o: True)
    ev = event("DOMESTIC_ABUSE_INCIDENT")
    ev["child"] = full_child()
    copy = decide(narrowed, ev)[Audience.SCHOOL_DSL].event
    assert copy is not None
    assert carried(copy, "child") == {"child.given_name", "child.upn", "child.address.postcode"} | ROUTING
    assert {"child.family_name", "child.nhs_number", "child.address.line1"} <= set(copy["withheld_fields"])
