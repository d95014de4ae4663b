"""Issue 16, as an auditor would try it: one validation for `sgb policy evaluate` and the
filter. Evaluate refuses what the filter refuses, naming the field and never the value, and
answers each line of a file of events as it would one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_events import as_json, attendance, evaluate, flag_event

from schemas.exceptions import InvalidEvent
from schemas.validation import validate_event
from schemas.vocabulary import Audience
from sgb.cli import main


# -- 1. one validation ---------------------------------------------------------------------------
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
