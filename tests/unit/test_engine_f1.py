"""F1 (Operation Encompass) and the principles it exercises, on the pure engine."""

from __future__ import annotations

from datetime import date

import pytest
from factories import domestic_abuse_incident

import schemas
from consent.engine import Engine
from consent.policy import load
from consent.state import ChildState
from schemas.vocabulary import Audience, Outcome, Reason

ONBOARDED = {("MASH", "202"), ("SCHOOL_DSL", "100000"), ("HEALTH_SAFEGUARDING", "QMJ"), ("GP", "F83004")}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(
        load(),
        schemas.load("SafeguardingEvent"),
        b"k" * 32,
        lambda audience, org: (str(audience), org) in ONBOARDED,
    )


def by_audience(decisions):  # type: ignore[no-untyped-def]
    return {d.audience: d for d in decisions}


def test_school_gets_the_minimal_copy(engine: Engine) -> None:
    event = domestic_abuse_incident()
    school = by_audience(engine.decide(event, ChildState()))[Audience.SCHOOL_DSL]
    assert school.outcome is Outcome.SHARE
    assert school.rule == "F1-school"
    assert school.organisation == "100000"
    copy = school.event
    assert copy is not None
    # What F1 says the school gets.
    assert copy["child"]["given_name"] == "Testy" and copy["child"]["family_name"] == "Childe"
    assert copy["child"]["date_of_birth"] == date(2015, 6, 1)
    assert copy["details"]["incident_at"] == event["details"]["incident_at"]
    assert copy["details"]["child_present"] is True
    assert copy["source"]["organisation"] == "metropolitan"
    assert copy["source"]["contact"]["reference"] == "CAD-77"
    # What it must not get: no narrative, no offence detail, nothing about the adults.
    assert copy["narrative"] is None
    assert copy["details"]["offence_types"] == []
    assert copy["details"]["arrest_made"] is None and copy["details"]["protective_measures"] is None
    assert copy["details"]["dash_risk_level"] is None
    assert copy["related_people"] == []
    assert copy["child"]["nhs_number"] is None
    assert copy["child"]["address"] is None and copy["child"]["confidential_address"] is None
    assert copy["child"]["ethnicity"] is None
    # The recipient sees what was withheld, but not that a confidential address exists.
    assert "narrative" in copy["withheld_fields"] and "related_people" in copy["withheld_fields"]
    assert not any("confidential_address" in f for f in copy["withheld_fields"])
    assert "child.confidential_address" in school.removed_fields


def test_mash_gets_the_full_copy_with_confidential_address(engine: Engine) -> None:
    event = domestic_abuse_incident()
    mash = by_audience(engine.decide(event, ChildState()))[Audience.MASH]
    assert mash.outcome is Outcome.SHARE and mash.rule == "F1-mash"
    copy = mash.event
    assert copy is not None
    assert copy["child"]["confidential_address"] == event["child"]["confidential_address"]
    assert copy["narrative"] == event["narrative"]
    assert copy["related_people"] == event["related_people"]
    assert copy["details"]["offence_types"] == ["Common assault"]
    assert copy["child"]["nhs_number"] == event["child"]["nhs_number"]
    # F4: health detail reaches the MASH only on significant harm.
    assert copy["details"]["child_injured"] is None
    assert mash.removed_fields == ("details.child_injured",)


def test_mash_gets_health_detail_on_significant_harm(engine: Engine) -> None:
    event = domestic_abuse_incident(risk="SIGNIFICANT_HARM")
    mash = by_audience(engine.decide(event, ChildState()))[Audience.MASH]
    assert mash.rule == "F1-mash-significant-harm"
    assert mash.event is not None and mash.event["details"]["child_injured"] is False
    assert mash.removed_fields == ()


@pytest.mark.parametrize(("born", "shared"), [(date(2022, 1, 1), True), (date(2021, 11, 20), False)])
def test_health_visiting_only_for_under_fives(engine: Engine, born: date, shared: bool) -> None:
    # The incident is on 2026-11-20: born 2021-11-20 is exactly 5 that day, so not under 5.
    decision = by_audience(engine.decide(domestic_abuse_incident(born=born), ChildState()))[
        Audience.HEALTH_SAFEGUARDING
    ]
    if shared:
        assert decision.outcome is Outcome.SHARE and decision.organisation == "QMJ"
        assert decision.event is not None and decision.event["narrative"] is None
    else:
        assert decision.outcome is Outcome.WITHHOLD and decision.reason is Reason.CONDITION_NOT_MET


def test_every_candidate_audience_gets_exactly_one_decision(engine: Engine) -> None:
    decisions = engine.decide(domestic_abuse_incident(), ChildState())
    assert sorted(d.audience for d in decisions) == sorted(Audience)
    police = by_audience(decisions)[Audience.POLICE_PPU]
    assert police.outcome is Outcome.WITHHOLD and police.reason is Reason.NO_RULE


def test_unknown_school_is_not_guessed(engine: Engine) -> None:
    decision = by_audience(engine.decide(domestic_abuse_incident(school=None), ChildState()))[
        Audience.SCHOOL_DSL
    ]
    assert decision.outcome is Outcome.WITHHOLD and decision.reason is Reason.RECIPIENT_UNKNOWN


def test_school_known_from_state_is_used(engine: Engine) -> None:
    state = ChildState(school_urn="100000")
    decision = by_audience(engine.decide(domestic_abuse_incident(school=None), state))[Audience.SCHOOL_DSL]
    assert decision.outcome is Outcome.SHARE and decision.organisation == "100000"


def test_school_without_delivery_topic_is_not_onboarded(engine: Engine) -> None:
    decision = by_audience(engine.decide(domestic_abuse_incident(school="999999"), ChildState()))[
        Audience.SCHOOL_DSL
    ]
    assert decision.outcome is Outcome.WITHHOLD and decision.reason is Reason.RECIPIENT_NOT_ONBOARDED
    assert decision.organisation == "999999"


def test_the_original_event_is_never_modified(engine: Engine) -> None:
    event = domestic_abuse_incident()
    snapshot = repr(event)
    engine.decide(event, ChildState())
    assert repr(event) == snapshot
