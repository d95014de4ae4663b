"""Education connector, pure parts: CTF to attendance alerts and children missing education,
snapshot diffing of attendance levels, school tokens, concern validation and the OpenAPI document."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.education import CtfMapper, CtfReader
from connectors.education import synthetic as syn
from connectors.education.concern import Concern, concern_record, map_concern
from connectors.education.tokens import TokenStore
from connectors.education.webhook import _field_errors, openapi_document
from connectors.exceptions import ConnectorError, MappingError, NoEvent
from connectors.runtime.readers import FileRef
from connectors.runtime.snapshots import SnapshotMapper, SnapshotStore


def events_of(path: Path, mapper: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    events, dead = [], []
    for record in CtfReader().records(FileRef(path, "edu", path.name, path.name)):
        try:
            events.append(mapper(record))
        except NoEvent:
            pass
        except MappingError as exc:
            dead.append((record.position, str(exc)))
    return events, dead


def test_ctf_attendance_levels_and_bad_numbers(tmp_path: Path) -> None:
    rng = random.Random(1)
    pupils = [
        syn.pupil(rng, 1),  # 3.3% absent: no alert
        syn.pupil(rng, 2, authorised=20, unauthorised=20),  # 13.3%: persistent
        syn.pupil(rng, 3, authorised=100, unauthorised=60),  # 53%: severe
        syn.pupil(rng, 4, authorised=200, unauthorised=200),  # more than possible
    ]
    events, dead = events_of(syn.write_ctf(tmp_path / "a.xml", pupils), CtfMapper())
    assert [(e["event_type"], e["details"]["alert_level"]) for e in events] == [
        ("ATTENDANCE_ALERT", "PERSISTENT"),
        ("ATTENDANCE_ALERT", "SEVERE"),
    ]
    e = events[0]
    assert e["child"]["school_urn"] == "100000" and e["child"]["family_name"] == "Testfamily2"
    assert e["details"]["academic_year"] == "2024/25" and e["details"]["attendance_percentage"] == 86.7
    assert e["source"] == {
        "agency": "EDUCATION",
        "organisation": "100000",
        "organisation_name": "Invented Primary School",
        "system": "ctf",
        "record_id": None,
        "contact": None,
    }
    assert dead == [
        (
            "Pupil 4 / Attendance / YearData",
            "SessionsAuthorised and SessionsUnauthorised add up to more than SessionsPossible.",
        )
    ]


def test_ctf_to_unknown_destination_is_child_missing_education(tmp_path: Path) -> None:
    rng = random.Random(2)
    path = syn.write_ctf(
        tmp_path / "lost.xml", [syn.pupil(rng, 1, leaving="14/02/2025")], dest=("MMM", "MMMM")
    )
    events, _ = events_of(path, CtfMapper())
    assert [e["event_type"] for e in events] == ["CHILD_MISSING_EDUCATION"]
    assert events[0]["details"]["left_roll_date"].isoformat() == "2025-02-14"
    assert events[0]["details"]["missing_education_reason"] == "MOVED_DESTINATION_UNKNOWN"


def test_attendance_alert_only_when_the_level_changes(tmp_path: Path) -> None:
    rng = random.Random(3)
    upn_pupil = syn.pupil(rng, 1, authorised=20, unauthorised=20)
    store = SnapshotStore(tmp_path / "state")

    def level(name: str, **kw: Any) -> list[str]:
        p = syn.CtfPupil(upn_pupil.upn, "Testfamily", "Pupil", "2014-05-01", **kw)
        mapper = SnapshotMapper(CtfMapper(), store)
        path = syn.write_ctf(tmp_path / name, [p])
        events = []
        for record in CtfReader().records(FileRef(path, "edu", name, name)):
            try:
                events.append(mapper(record))
            except NoEvent:
                continue
            store.published([(record.file_id, record.ordinal)])
        return [e["details"]["alert_level"] for e in events]

    assert level("1.xml", authorised=20, unauthorised=20) == ["PERSISTENT"]
    assert level("2.xml", authorised=25, unauthorised=20) == []  # still persistent
    assert level("3.xml", authorised=100, unauthorised=60) == ["SEVERE"]


def test_school_tokens_are_stored_hashed(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens")
    token = store.add("100000")
    assert token not in (tmp_path / "tokens").read_text()
    again = TokenStore(tmp_path / "tokens")
    assert again.school(token) == "100000" and again.school(token + "x") is None and again.school("") is None
    with pytest.raises(ConnectorError, match="six digits"):
        store.add("12")


def test_concern_maps_and_validation_errors_never_echo_values() -> None:
    body = syn.concern_payload(random.Random(4), 1)
    concern = Concern.model_validate(body)
    event = map_concern(concern_record("edu-webhook", "100000", concern, b"{}"), "100000")
    assert event["event_type"] == "SCHOOL_SAFEGUARDING_CONCERN" and event["child"]["school_urn"] == "100000"
    assert event["details"]["concern_categories"] == ["NEGLECT"] and event["source"]["record_id"] == "CONC-1"
    again = map_concern(concern_record("edu-webhook", "100000", concern, b"{}"), "100000")
    assert again["event_id"] == event["event_id"]  # a resend is recognisable
    secret = "Secretname-Zebedee"
    bad = syn.concern_payload(random.Random(4), 2, risk=secret, occurred_at="2025-03-03T10:15:00")
    bad["child"]["given_name"] = secret * 10
    with pytest.raises(ValidationError) as err:
        Concern.model_validate(bad)
    problems = _field_errors(err.value)
    assert {p["field"] for p in problems} == {"risk", "occurred_at", "child.given_name"}
    assert secret not in repr(problems)
    with pytest.raises(MappingError, match="upn"):
        wrong = Concern.model_validate(syn.concern_payload(random.Random(4), 3, child={"upn": "A123"}))
        map_concern(concern_record("edu-webhook", "100000", wrong, b"{}"), "100000")


def test_openapi_document_describes_the_endpoint() -> None:
    doc = openapi_document()
    post = doc["paths"]["/v1/concerns"]["post"]
    assert doc["openapi"].startswith("3.1") and set(post["responses"]) >= {"202", "401", "422", "503"}
    concern = doc["components"]["schemas"]["Concern"]
    assert {"concern_id", "occurred_at", "child"} <= set(concern["required"])
    assert "ConcernChild" in doc["components"]["schemas"] and "$defs" not in concern
    assert doc["components"]["securitySchemes"]["schoolToken"]["scheme"] == "bearer"
