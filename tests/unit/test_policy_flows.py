"""Decision tables for flows F2-F7 and principles 3, 4, 6 and 8 of POLICY.md, on the pure engine."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

import pytest
from factories import event

import schemas
from consent.engine import Decision, Engine
from consent.policy import load
from consent.state import ChildState, Consent, Flag
from consent.state_updates import derive
from schemas.vocabulary import Audience, LawfulBasis, Outcome, Reason

ONBOARDED = {
    ("MASH", "202"),
    ("MASH", "203"),
    ("FAMILY_HELP", "202"),
    ("SCHOOL_DSL", "100000"),
    ("SCHOOL_DSL", "100001"),
    ("GP", "F83004"),
    ("HEALTH_SAFEGUARDING", "QMJ"),
    ("EMERGENCY_CARE", "national"),
    ("POLICE_PPU", "metropolitan"),
}
CONTACT = {"team": "Camden MASH", "phone": "020 7974 0000", "email": None, "reference": "REF-1"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(
        load(),
        schemas.load("SafeguardingEvent"),
        b"k" * 32,
        lambda audience, org: (str(audience), org) in ONBOARDED,
    )


def decide(engine: Engine, ev: dict, state: ChildState | None = None) -> dict[Audience, Decision]:  # type: ignore[type-arg]
    return {d.audience: d for d in engine.decide(ev, state or ChildState())}


def shared(decisions: dict[Audience, Decision]) -> set[Audience]:
    return {a for a, d in decisions.items() if d.outcome is Outcome.SHARE}


def consent(state: str, at: datetime, audience: str = "FAMILY_HELP") -> Consent:
    return Consent(audience, "FAMILY_HELP", state, "PARENT", at)


T1, T2, T3 = (datetime(2026, 11, d, 9, 0, tzinfo=UTC) for d in (1, 2, 3))


# -- F2 flags for emergency care ---------------------------------------------------------
def plan(change: str = "STARTED") -> dict:  # type: ignore[type-arg]
    return event(
        "CHILD_PROTECTION_PLAN",
        detail_values={
            "change": change,
            "start_date": date(2026, 10, 1),
            "responsible_local_authority_code": "203",
            "responsible_contact": CONTACT,
            "category_of_abuse": "NEGLECT",
            "plan_summary": "Synthetic plan text.",
        },
    )


def test_f2_plan_goes_to_emergency_care_gp_and_school_only(engine: Engine) -> None:
    decisions = decide(engine, plan())
    assert shared(decisions) == {Audience.EMERGENCY_CARE, Audience.GP, Audience.SCHOOL_DSL}
    ec = decisions[Audience.EMERGENCY_CARE].event
    assert ec is not None
    assert ec["child"]["nhs_number"] and ec["child"]["given_name"] == "Testy" and ec["child"]["date_of_birth"]
    assert ec["details"]["change"] == "STARTED" and ec["details"]["start_date"] == date(2026, 10, 1)
    assert ec["details"]["responsible_contact"] == CONTACT
    assert ec["details"]["category_of_abuse"] is None and ec["details"]["plan_summary"] is None
    assert ec["child"]["address"] is None and ec["narrative"] is None and ec["related_people"] == []
    school = decisions[Audience.SCHOOL_DSL].event
    assert school is not None and school["child"]["nhs_number"] is None


def attendance(risk: str = "NEEDS_SUPPORT") -> dict:  # type: ignore[type-arg]
    return event(
        "EMERGENCY_ATTENDANCE",
        risk=risk,
        local_authority_code="202",
        detail_values={
            "arrival_at": datetime(2026, 11, 21, 2, 10, tzinfo=UTC),
            "site_ods_code": "RRV03",
            "site_name": "Synthetic ED",
            "attendance_reason": "Head injury (synthetic)",
        },
    )


def test_f2_attendance_of_flagged_child_goes_to_responsible_mash_without_clinical_reason(
    engine: Engine,
) -> None:
    state = derive(plan(), ChildState())  # the filter derives the flag from the LA event
    assert state.child_protection_plan == Flag(True, "203", date(2026, 10, 1))
    decisions = decide(engine, attendance(), state)
    mash = decisions[Audience.MASH]
    assert mash.outcome is Outcome.SHARE and mash.organisation == "203"  # responsible LA, not the home LA
    assert mash.event is not None
    assert mash.event["details"]["arrival_at"] and mash.event["details"]["site_name"] == "Synthetic ED"
    assert mash.event["child"]["nhs_number"]
    assert mash.event["details"]["attendance_reason"] is None
    assert decisions[Audience.GP].outcome is Outcome.SHARE


def test_f2_attendance_on_significant_harm_carries_the_clinical_reason(engine: Engine) -> None:
    state = derive(plan(), ChildState())
    mash = decide(engine, attendance("SIGNIFICANT_HARM"), state)[Audience.MASH]
    assert mash.event is not None and mash.event["details"]["attendance_reason"] == "Head injury (synthetic)"


def test_f2_attendance_without_flag_goes_to_no_local_authority_but_to_the_gp(engine: Engine) -> None:
    decisions = decide(engine, attendance(), ChildState())
    assert decisions[Audience.MASH].outcome is Outcome.WITHHOLD
    assert decisions[Audience.MASH].reason is Reason.CONDITION_NOT_MET
    assert decisions[Audience.FAMILY_HELP].outcome is Outcome.WITHHOLD
    gp = decisions[Audience.GP]
    assert gp.outcome is Outcome.SHARE and gp.event is not None
    assert gp.event["details"]["attendance_reason"] == "Head injury (synthetic)"


def test_f2_ended_plan_clears_the_flag(engine: Engine) -> None:
    state = derive(plan("ENDED"), derive(plan(), ChildState()))
    assert state.active_flag("ANY") is None
    assert decide(engine, attendance(), state)[Audience.MASH].outcome is Outcome.WITHHOLD


# -- F3 family help with consent; principle 3, 4 and 6 -------------------------------------
def concern(risk: str = "NEEDS_SUPPORT") -> dict:  # type: ignore[type-arg]
    return event(
        "SCHOOL_SAFEGUARDING_CONCERN",
        risk=risk,
        detail_values={"description": "Synthetic concern text.", "injuries_observed": "bruise (synthetic)"},
    )


@pytest.mark.parametrize("state", ["REFUSED", "WITHDRAWN", "NOT_SOUGHT", None])
def test_f3_family_help_needs_consent_given(engine: Engine, state: str | None) -> None:
    child = ChildState(consents=(consent(state, T1),)) if state else ChildState()
    decision = decide(engine, concern(), child)[Audience.FAMILY_HELP]
    assert decision.outcome is Outcome.WITHHOLD and decision.reason is Reason.CONSENT_NOT_GIVEN
    assert decision.consent_state == (state or "NO_RECORD")


def test_f3_family_help_with_consent_given(engine: Engine) -> None:
    decision = decide(engine, concern(), ChildState(consents=(consent("GIVEN", T1),)))[Audience.FAMILY_HELP]
    assert decision.outcome is Outcome.SHARE and decision.lawful_basis is LawfulBasis.CONSENT
    assert decision.consent_state == "GIVEN" and decision.organisation == "202"
    assert decision.event is not None
    assert decision.event["details"]["description"] == "Synthetic concern text."
    assert decision.event["details"]["injuries_observed"] is None  # health detail never to family help (F4)


def test_f3_consent_for_all_audiences_counts(engine: Engine) -> None:
    state = ChildState(consents=(consent("GIVEN", T1, audience="ALL"),))
    assert decide(engine, concern(), state)[Audience.FAMILY_HELP].outcome is Outcome.SHARE


def test_f3_significant_harm_goes_to_mash_whatever_the_consent_and_says_so(engine: Engine) -> None:
    # A refusal covering every audience is the MASH's consent state too: the override shows.
    state = ChildState(consents=(consent("REFUSED", T1, audience="ALL"),))
    decisions = decide(engine, concern("SIGNIFICANT_HARM"), state)
    mash = decisions[Audience.MASH]
    assert mash.outcome is Outcome.SHARE
    assert mash.lawful_basis is LawfulBasis.SAFEGUARDING_OVERRIDE and mash.consent_state == "REFUSED"
    assert decisions[Audience.FAMILY_HELP].outcome is Outcome.WITHHOLD
    # A refusal for family help only does not cover the MASH (principle 7).
    decisions = decide(engine, concern("SIGNIFICANT_HARM"), ChildState(consents=(consent("REFUSED", T1),)))
    assert decisions[Audience.MASH].outcome is Outcome.SHARE
    assert decisions[Audience.MASH].consent_state == "NO_RECORD"
    assert decisions[Audience.FAMILY_HELP].consent_state == "REFUSED"


def test_newest_consent_wins_by_recorded_time_not_arrival() -> None:
    state = ChildState().with_consent(consent("GIVEN", T2))
    late_but_older = state.with_consent(consent("WITHDRAWN", T1))
    assert late_but_older.consent_state(Audience.FAMILY_HELP, "FAMILY_HELP") == "GIVEN"  # type: ignore[arg-type]
    withdrawn = state.with_consent(consent("WITHDRAWN", T3))
    assert withdrawn.consent_state(Audience.FAMILY_HELP, "FAMILY_HELP") == "WITHDRAWN"  # type: ignore[arg-type]


def test_withdrawal_applies_to_the_next_event(engine: Engine) -> None:
    state = ChildState().with_consent(consent("GIVEN", T1))
    assert decide(engine, concern(), state)[Audience.FAMILY_HELP].outcome is Outcome.SHARE
    state = state.with_consent(consent("WITHDRAWN", T2))
    assert decide(engine, concern(), state)[Audience.FAMILY_HELP].reason is Reason.CONSENT_NOT_GIVEN


# -- F4 health detail ------------------------------------------------------------------------
def health_concern(risk: str = "NEEDS_SUPPORT") -> dict:  # type: ignore[type-arg]
    return event(
        "HEALTH_SAFEGUARDING_CONCERN",
        risk=risk,
        detail_values={
            "clinical_findings": "Synthetic findings.",
            "sexual_health_findings": "Synthetic SH note.",
            "mental_health_concern": "Synthetic MH note.",
        },
    )


def test_f4_health_detail_to_gp_and_health_safeguarding_only(engine: Engine) -> None:
    decisions = decide(engine, health_concern())
    assert shared(decisions) == {Audience.GP, Audience.HEALTH_SAFEGUARDING}
    gp = decisions[Audience.GP].event
    assert gp is not None and gp["details"]["sexual_health_findings"] == "Synthetic SH note."
    assert decisions[Audience.MASH].reason is Reason.CONDITION_NOT_MET


def test_f4_health_detail_to_mash_on_significant_harm(engine: Engine) -> None:
    mash = decide(engine, health_concern("SIGNIFICANT_HARM"))[Audience.MASH]
    assert mash.outcome is Outcome.SHARE and mash.event is not None
    assert mash.event["details"]["clinical_findings"] == "Synthetic findings."


# -- F5 referrers hear the outcome -------------------------------------------------------------
def test_f5_outcome_goes_back_to_the_referring_school_without_case_detail(engine: Engine) -> None:
    ev = event(
        "REFERRAL_OUTCOME",
        detail_values={
            "decision": "SECTION_17_ASSESSMENT",
            "decision_date": date(2026, 11, 2),
            "referrer_audience": "SCHOOL_DSL",
            "referrer_organisation": "100001",
            "contact": CONTACT,
            "decision_reasons": "Synthetic reasons.",
        },
    )
    decisions = decide(engine, ev)
    assert shared(decisions) == {Audience.SCHOOL_DSL}
    school = decisions[Audience.SCHOOL_DSL]
    assert school.organisation == "100001"  # the referrer, not the child's school
    assert school.event is not None
    assert school.event["details"]["decision"] == "SECTION_17_ASSESSMENT"
    assert school.event["details"]["contact"] == CONTACT
    assert school.event["details"]["decision_reasons"] is None
    assert decisions[Audience.GP].reason is Reason.CONDITION_NOT_MET


# -- F6 strategy discussions -------------------------------------------------------------------
def test_f6_case_detail_only_to_police_and_health(engine: Engine) -> None:
    ev = event(
        "STRATEGY_DISCUSSION",
        risk="SIGNIFICANT_HARM",
        detail_values={
            "meeting_at": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            "convened_by": CONTACT,
            "section_47": True,
            "concerns": "Synthetic concerns.",
        },
    )
    decisions = decide(engine, ev)
    assert {Audience.POLICE_PPU, Audience.HEALTH_SAFEGUARDING, Audience.SCHOOL_DSL} <= shared(decisions)
    for audience in (Audience.POLICE_PPU, Audience.HEALTH_SAFEGUARDING):
        copy_ = decisions[audience].event
        assert copy_ is not None and copy_["details"]["concerns"] == "Synthetic concerns."
    school = decisions[Audience.SCHOOL_DSL].event
    assert school is not None and school["details"]["concerns"] is None
    assert school["details"]["meeting_at"] and school["details"]["convened_by"] == CONTACT
    assert school["child"]["given_name"] == "Testy"


# -- F7 missing and exploitation ---------------------------------------------------------------
def test_f7_missing_to_mash_in_full_and_school_without_narrative_or_third_parties(engine: Engine) -> None:
    ev = event(
        "MISSING_EPISODE", detail_values={"change": "REPORTED", "circumstances": "Synthetic circumstances."}
    )
    decisions = decide(engine, ev)
    mash = decisions[Audience.MASH].event
    assert mash is not None and mash["narrative"] == ev["narrative"] and mash["related_people"]
    school = decisions[Audience.SCHOOL_DSL].event
    assert school is not None
    assert school["narrative"] is None and school["related_people"] == []
    assert school["details"]["circumstances"] is None


@pytest.mark.parametrize(("agency", "to_police"), [("EDUCATION", True), ("HEALTH", True), ("POLICE", False)])
def test_f7_exploitation_raised_outside_police_goes_to_police(
    engine: Engine, agency: str, to_police: bool
) -> None:
    ev = event("EXPLOITATION_CONCERN", agency=agency, detail_values={"exploitation_type": "CRIMINAL"})
    police = decide(engine, ev)[Audience.POLICE_PPU]
    assert (police.outcome is Outcome.SHARE) is to_police


# -- principle 8: fail closed -------------------------------------------------------------------
def test_a_redaction_that_fails_withholds_and_never_shares_unredacted() -> None:
    schema = copy.deepcopy(schemas.load("SafeguardingEvent"))
    for field in schema["fields"]:
        if field["name"] == "narrative":  # a schema the engine cannot withhold narrative from
            field["type"] = "string"
            field.pop("default")
    engine = Engine(load(), schema, b"k" * 32, lambda a, o: True)
    decisions = {d.audience: d for d in engine.decide(event("DOMESTIC_ABUSE_INCIDENT"), ChildState())}
    school = decisions[Audience.SCHOOL_DSL]
    assert (
        school.outcome is Outcome.WITHHOLD
        and school.reason is Reason.REDACTION_FAILED
        and school.event is None
    )
    assert decisions[Audience.MASH].outcome is Outcome.SHARE  # MASH may see narrative: nothing to redact


def test_every_event_type_gets_one_decision_per_audience(engine: Engine) -> None:
    from factories import AGENCY_OF

    for event_type in AGENCY_OF:
        decisions = engine.decide(event(event_type), ChildState())
        assert sorted(d.audience for d in decisions) == sorted(Audience), event_type
