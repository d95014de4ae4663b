"""Issue 16, as an auditor would try it: one validation for evaluate and the filter, a truthful
audit (principles 6, 7, 9), and copies that carry exactly the fields F2 lists."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import pytest
from factories import event

import schemas
from consent.audit import decision_entry, withhold
from consent.engine import Decision, Engine
from consent.explain import explain
from consent.policy import load, parse
from consent.state import ChildState, Consent
from consent.state_updates import derive
from schemas.exceptions import InvalidEvent
from schemas.identifiers import synthetic_nhs_number, synthetic_upn
from schemas.jsonform import to_json
from schemas.topics import load_declaration
from schemas.validation import validate_event
from schemas.vocabulary import Audience, Outcome, Reason
from sgb.cli import main

RNG = random.Random(16)
NHS = synthetic_nhs_number(RNG)
CONTACT = {"team": "Synthetic LA front door", "phone": "020 7946 0000", "email": None, "reference": "REF-9"}
T1 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ENVELOPE = schemas.load("SafeguardingEvent")
ORGANISATIONS = load_declaration().deliveries.organisations


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(
        load(), ENVELOPE, b"k" * 32, lambda audience, org: org in ORGANISATIONS.get(str(audience), [])
    )


def decide(engine: Engine, ev: dict[str, Any], state: ChildState | None = None) -> dict[Audience, Decision]:
    return {d.audience: d for d in engine.decide(ev, state or ChildState())}


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


# -- 1. one validation ---------------------------------------------------------------------------
def as_json(ev: dict[str, Any]) -> Any:
    return to_json(ev)


def evaluate(ev: Any, state: ChildState | None = None) -> dict[str, Any]:
    return explain(load(), ev, state or ChildState(), load_declaration(), b"k" * 32)


def bad_events() -> dict[str, tuple[dict[str, Any], str]]:
    """(event in its JSON shape, the field the refusal must name) for each invalid input of the issue."""
    out: dict[str, tuple[dict[str, Any], str]] = {}
    ev = as_json(attendance())
    ev["child"]["nhs_number"] = "9990000001"  # the example: its first nine digits give check value 10
    out["bad check digit"] = (ev, "child.nhs_number")
    ev = as_json(attendance())
    for name in ("nhs_number", "upn", "la_child_id", "police_person_reference"):
        ev["child"][name] = None
    out["no child identifier"] = (ev, "identifies no child")
    ev = as_json(attendance())
    ev["details"]["setting"] = "CAR_PARK"
    out["unknown enum symbol"] = (ev, "details.setting")
    ev = as_json(attendance())
    ev["details"]["previous_attendances_12_months"] = "3"
    out["string for an int"] = (ev, "details.previous_attendances_12_months")
    ev = as_json(attendance())
    ev["child"]["upn"] = (
        "A" + ev["child"]["upn"][1:] if ev["child"]["upn"][0] != "A" else "B" + ev["child"]["upn"][1:]
    )
    out["bad UPN check letter"] = (ev, "child.upn")
    ev = as_json(attendance())
    ev["child"]["gp_practice_ods"] = "F8300"
    out["bad ODS code"] = (ev, "child.gp_practice_ods")
    ev = as_json(attendance())
    ev["child"]["school_urn"] = "10000A"
    out["bad URN"] = (ev, "child.school_urn")
    ev = as_json(flag_event("CHILD_PROTECTION_PLAN"))
    ev["details"]["responsible_local_authority_code"] = "2020"
    out["bad LA code"] = (ev, "details.responsible_local_authority_code")
    return out


@pytest.mark.parametrize("case", sorted(bad_events()))
def test_evaluate_refuses_what_the_filter_refuses_naming_the_field_not_the_value(case: str) -> None:
    ev, field = bad_events()[case]
    with pytest.raises(InvalidEvent) as refused:
        evaluate(ev)
    sentence = str(refused.value)
    assert field in sentence
    for value in (ev["child"]["nhs_number"], ev["child"]["upn"], "CAR_PARK", "F8300", "10000A", "2020"):
        if value:
            assert value not in sentence
    assert sentence.endswith(".") and "\n" not in sentence


def test_a_valid_event_passes_and_evaluate_answers() -> None:
    validate_event(attendance())
    result = evaluate(as_json(attendance()))
    assert {d["audience"] for d in result["decisions"]} == {a.value for a in Audience}


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


def test_sgb_policy_evaluate_exits_1_with_one_sentence_naming_the_field(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SGB_STATE_DIR", str(tmp_path / "state"))
    ev, _ = bad_events()["bad check digit"]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(ev), encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        main(["policy", "evaluate", "--event", str(path)])
    assert stopped.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(".") and "9990000001" not in err[0]
    assert err[0].startswith("sgb: Field child.nhs_number is not a valid identifier (NHS number is not valid")
    path.write_text(json.dumps(as_json(attendance())), encoding="utf-8")
    main(["policy", "evaluate", "--event", str(path)])
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["decisions"]) == len(Audience)


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


def test_sgb_policy_evaluate_events_answers_each_line_as_evaluate_would_and_counts_rejections(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--events`` pays the start-up once for a file of events; each answer is the one
    ``--event`` gives for that line, and a refused line is a line too, never a stop."""
    monkeypatch.setenv("SGB_STATE_DIR", str(tmp_path / "state"))
    good, (bad, _) = as_json(attendance()), bad_events()["bad check digit"]
    consent = {"consents": [{"consent_id": "not a full record"}]}
    lines = [
        json.dumps(good),
        "",
        "{not json",
        json.dumps(bad),
        json.dumps({"event": good, "state": consent}),
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    single = tmp_path / "event.json"
    single.write_text(json.dumps(good), encoding="utf-8")
    main(["policy", "evaluate", "--event", str(single)])
    alone = json.loads(capsys.readouterr().out)

    with pytest.raises(SystemExit) as stopped:
        main(["policy", "evaluate", "--events", str(path)])
    assert stopped.value.code == 1
    out, err = capsys.readouterr()
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["line"] for a in answers] == [1, 3, 4, 5]  # the blank line is no event
    assert answers[0] == {"line": 1, **alone}
    assert (
        answers[1]["rejected"]
        == "Line 3 is not valid JSON: Expecting property name enclosed in double quotes."
    )
    assert answers[2]["rejected"].startswith("Field child.nhs_number is not a valid identifier")
    assert answers[2]["event_id"] == bad["event_id"] and "9990000001" not in out
    assert answers[3]["rejected"].startswith("Line 5: State is invalid: Field ")
    assert err.strip() == "sgb: 3 of 4 events were rejected (their lines say why)."


def test_a_state_whose_consents_are_not_a_list_is_one_sentence_not_a_traceback(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SGB_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "event.json").write_text(json.dumps(as_json(attendance())), encoding="utf-8")
    (tmp_path / "state.json").write_text('{"consents": 3}', encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "policy",
                "evaluate",
                "--event",
                str(tmp_path / "event.json"),
                "--state",
                str(tmp_path / "state.json"),
            ]
        )
    assert stopped.value.code == 1
    assert (
        capsys.readouterr().err.strip()
        == 'sgb: State is invalid: "consents" must be a list of consent records.'
    )
