"""Principle 10 in the pure engine: a correction reaches exactly the original's recipients,
redacted by the grant they received it under, re-evaluated; metadata only when withdrawn."""

from __future__ import annotations

import uuid
from typing import Any

from factories import domestic_abuse_incident

import schemas
from consent.audit import decision_entry
from consent.corrections import as_original, decide_correction, recipients_of, told
from consent.engine import Engine
from consent.policy import BASELINE, load
from consent.state import ChildState
from schemas.vocabulary import Audience, CorrectionKind, Outcome


def _engine() -> Engine:
    return Engine(load(BASELINE), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: True)


def _correction(original: dict[str, Any], kind: CorrectionKind, **changes: Any) -> dict[str, Any]:
    out = {**original, **changes, "event_id": str(uuid.uuid4())}
    out["correction"] = {"kind": kind.value, "corrects_event_id": original["event_id"]}
    return out


def test_an_amendment_reaches_exactly_the_recipients_with_their_own_redaction() -> None:
    engine, state = _engine(), ChildState()
    original = domestic_abuse_incident()
    shared = recipients_of(engine.decide(original, state))
    school = next(r for r in shared if r.audience is Audience.SCHOOL_DSL)
    # The school alone received it (as if the MASH had not been onboarded then).
    amended = _correction(original, CorrectionKind.AMENDED, narrative="SECRET-AMENDED-NARRATIVE")
    decisions = decide_correction(engine, amended, state, CorrectionKind.AMENDED, (school,))
    assert [(d.audience, d.organisation, d.correction) for d in decisions] == [
        (Audience.SCHOOL_DSL, school.organisation, "AMENDED")
    ]
    copy = decisions[0].event
    assert copy is not None and copy["narrative"] is None  # the school's redaction, again
    assert copy["child"]["given_name"] == original["child"]["given_name"]
    record = decision_entry(decisions[0])  # its part of the correction's audit record
    assert record["correction"] == "AMENDED" and record["corrects_event_id"] == original["event_id"]


def test_an_amendment_no_longer_granted_is_a_retraction_and_a_retraction_is_metadata_only() -> None:
    engine, state = _engine(), ChildState()
    original = domestic_abuse_incident()
    shared = recipients_of(engine.decide(original, state))
    # The child moved school in the amended record: the old school is told it is withdrawn.
    moved = {**original["child"], "school_urn": "100001"}
    amended = _correction(original, CorrectionKind.AMENDED, child=moved)
    decisions = {
        d.audience: d for d in decide_correction(engine, amended, state, CorrectionKind.AMENDED, shared)
    }
    school = decisions[Audience.SCHOOL_DSL]
    assert school.correction == "RETRACTED" and school.organisation == "100000"
    assert school.event is not None and school.event["child"]["given_name"] is None
    assert school.event["narrative"] is None and school.event["related_people"] == []
    assert decisions[Audience.MASH].correction == "AMENDED"
    after = told(shared, list(decisions.values()))
    assert {r.told for r in after} == {CorrectionKind.AMENDED, CorrectionKind.RETRACTED}


def test_no_recipient_no_correction_and_nothing_after_erasure() -> None:
    engine, state = _engine(), ChildState()
    original = domestic_abuse_incident()
    retracted = _correction(original, CorrectionKind.RETRACTED)
    assert decide_correction(engine, retracted, state, CorrectionKind.RETRACTED, ()) == []
    shared = recipients_of(engine.decide(original, state))
    erased = decide_correction(
        engine, _correction(original, CorrectionKind.ERASED), state, CorrectionKind.ERASED, shared
    )
    assert all(d.outcome is Outcome.SHARE and d.correction == "ERASED" for d in erased)
    assert len(erased) == len(shared)
    again = decide_correction(engine, retracted, state, CorrectionKind.RETRACTED, told(shared, erased))
    assert again == []


def test_an_amendment_of_an_event_never_decided_is_decided_as_that_event() -> None:
    original = domestic_abuse_incident()
    amended = _correction(original, CorrectionKind.AMENDED, narrative="later version")
    first = as_original(amended, lambda event_id: False)
    assert first is not None and first["event_id"] == original["event_id"] and first["correction"] is None
    assert first["narrative"] == "later version"
    assert as_original(amended, lambda event_id: event_id == original["event_id"]) is None  # it was decided
    retracted = _correction(original, CorrectionKind.RETRACTED)
    assert as_original(retracted, lambda event_id: False) is None  # nothing to tell anyone
    assert as_original(original, lambda event_id: False) is None
