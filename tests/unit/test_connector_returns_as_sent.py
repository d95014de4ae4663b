"""Local-authority and school returns as authorities really send them (issue 15), with no Kafka:
the file loop runs with the dry-run delivery, so every record's fate is visible.

A bad field withholds that field, not the child; pre-birth work is valid; a truncated file
publishes nothing and is dead-lettered once; unsupported files are named; CTF attendance
is per school; the accounting adds up. SSDA903: test_connector_ssda903_as_sent.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from la_returns import accounted, bad_upn, cin, la_mapper, run

from connectors.education import CtfMapper, CtfReader
from connectors.exceptions import MappingError
from connectors.local_authority import CinCensusReader, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as syn
from connectors.local_authority.identity import child_identity
from connectors.runtime.event_builder import checked_child
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import synthetic_upn, validate_upn


# -- 1. a bad field withholds that field, not the child -------------------------------------------
def test_a_bad_upn_withholds_the_upn_and_publishes_every_event_of_the_child(tmp_path: Path) -> None:
    upn = bad_upn(random.Random(1))
    with pytest.raises(InvalidIdentifier, match="check letter"):
        validate_upn(upn)
    kid = syn.CinChild("C1", upn, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-20")
    summary, sent = run(CinCensusReader(), la_mapper(), cin(tmp_path / "in", kid), tmp_path / "state")
    assert [e["event_type"] for e in sent.events] == [
        "REFERRAL_OUTCOME",
        "STRATEGY_DISCUSSION",
        "CHILD_PROTECTION_PLAN",
    ]
    assert all(e["child"]["upn"] is None and e["child"]["la_child_id"] == "C1" for e in sent.events)
    assert sent.dead_letters == []
    assert [p.reason for p in sent.findings] == ["child.upn withheld: UPN check letter does not match."] * 3
    assert all(upn not in p.line() for p in sent.findings)  # a finding never holds the value
    assert summary.counts["withheld"] == 3 and summary.counts["published"] == 3 and accounted(summary)
    assert summary.withheld_reasons == {"child.upn withheld: UPN check letter does not match.": 3}
    assert "3 of them published with a data-quality finding" in summary.line()


def test_a_record_whose_only_identifier_is_bad_is_still_dead_lettered() -> None:
    child = child_identity(LaProfile(), "202", None, upn=bad_upn(random.Random(2)), birth_date="2015-01-01")
    with pytest.raises(MappingError, match=r"^child\.upn: UPN check letter does not match\.$"):
        checked_child(child, datetime(2024, 4, 1, tzinfo=UTC))


def test_a_bad_date_of_birth_is_withheld_with_its_element(tmp_path: Path) -> None:
    kid = syn.CinChild("C1", "UN1", "31/02/2015", "2024-04-01", nfa=True)
    _summary, sent = run(CinCensusReader(), la_mapper(), cin(tmp_path / "in", kid), tmp_path / "state")
    assert [e["child"]["date_of_birth"] for e in sent.events] == [None]
    assert [p.reason for p in sent.findings] == [
        "child.date_of_birth withheld: PersonBirthDate is not a real date."
    ]


# -- 2. unborn and pre-birth children ---------------------------------------------------------------
def test_pre_birth_plans_and_section_47s_are_published_with_the_date_of_birth(tmp_path: Path) -> None:
    # Born 2024-06-01; the enquiry and the plan were before the birth, as for an unborn child.
    kid = syn.CinChild("C2", "UN1", "2024-06-01", "2024-03-01", s47="2024-03-04", cpp_start="2024-03-20")
    _summary, sent = run(CinCensusReader(), la_mapper(), cin(tmp_path / "in", kid), tmp_path / "state")
    assert sent.dead_letters == [] and sent.findings == []
    assert [e["event_type"] for e in sent.events] == [
        "REFERRAL_OUTCOME",
        "STRATEGY_DISCUSSION",
        "CHILD_PROTECTION_PLAN",
    ]
    assert {e["child"]["date_of_birth"].isoformat() for e in sent.events} == {"2024-06-01"}


def test_an_unborn_child_with_only_an_expected_birth_date_is_published(tmp_path: Path) -> None:
    path = cin(tmp_path / "in", syn.CinChild("C3", "UN1", "2024-07-01", "2024-03-01", cpp_start="2024-03-20"))
    text = path.read_text().replace("PersonBirthDate>", "ExpectedPersonBirthDate>")
    path.write_text(text)
    _summary, sent = run(CinCensusReader(), la_mapper(), path, tmp_path / "state")
    assert sent.dead_letters == []
    plans = [e for e in sent.events if e["event_type"] == "CHILD_PROTECTION_PLAN"]
    assert len(plans) == 1 and plans[0]["child"]["date_of_birth"].isoformat() == "2024-07-01"


def test_a_child_with_no_date_of_birth_is_published(tmp_path: Path) -> None:
    path = cin(tmp_path / "in", syn.CinChild("C4", "UN1", "", "2024-03-01", nfa=True))
    _summary, sent = run(CinCensusReader(), la_mapper(), path, tmp_path / "state")
    assert sent.dead_letters == [] and [e["child"]["date_of_birth"] for e in sent.events] == [None]


# -- 6. all or nothing per file ---------------------------------------------------------------------
def test_a_truncated_return_publishes_nothing_is_dead_lettered_once_and_its_fix_is_read(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    kids = list(syn.cin_children(60, rng))
    folder = tmp_path / "in"
    whole = cin(folder, *kids)
    data = whole.read_bytes()
    whole.write_bytes(data[: int(len(data) * 0.8)])  # cut mid-return, as a failed transfer leaves it
    state = tmp_path / "state"
    summary, sent = run(CinCensusReader(), la_mapper(), folder, state)
    assert sent.published == 0 and sent.events == []
    assert [(p.source, p.position) for p in sent.dead_letters] == [("cin.xml", "whole file")]
    assert "not well-formed XML" in sent.dead_letters[0].reason
    assert summary.failed_files and accounted(summary)
    again, resent = run(CinCensusReader(), la_mapper(), folder, state)
    assert resent.dead_letters == [] and resent.published == 0 and not again.failed_files  # once
    whole.write_bytes(data)  # the authority sends the return again, complete
    fixed, sent = run(CinCensusReader(), la_mapper(), folder, state)
    assert sent.dead_letters == [] and sent.published == fixed.counts["published"] > 0


# -- 7. unsupported files are named; nothing usable is not a success -------------------------------
def test_unsupported_files_are_counted_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    cin(folder, syn.CinChild("C1", "UN1", "2015-01-01", "2024-04-01", nfa=True))
    (folder / "notes.txt").write_text("not a return")
    (folder / "return.xlsx").write_bytes(b"PK\x03\x04")
    summary, sent = run(CinCensusReader(), la_mapper(), folder, tmp_path / "state")
    assert summary.unsupported == ["notes.txt", "return.xlsx"] and sent.published == 1
    assert "2 file(s) not read (unsupported): notes.txt, return.xlsx." in summary.line()
    assert summary.usable


def test_a_folder_with_nothing_usable_is_not_usable(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "903.xlsx").write_bytes(b"PK\x03\x04")  # a workbook, not its CSV tables
    summary, _ = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert summary.unsupported == ["903.xlsx"] and not summary.usable


# -- 4. CIN: --la is checked against the header; reasons name the element ---------------------------
def test_la_that_conflicts_with_the_census_header_is_refused(tmp_path: Path) -> None:
    path = cin(tmp_path / "in", syn.CinChild("C1", "UN1", "2015-01-01", "2024-04-01", nfa=True), la="202")
    state = tmp_path / "state"
    summary, sent = run(CinCensusReader("203"), la_mapper(), path, state)
    assert summary.failed_files == [
        "File cin.xml is another local authority's return: its Header/Source/LEA is not --la 203; "
        "give the right --la, or none to use the header's."
    ]
    assert sent.published == 0 and sent.dead_letters == []  # refused, not dead-lettered
    summary, sent = run(CinCensusReader("202"), la_mapper(), path, state)  # nor checkpointed
    assert sent.published == 1 and not summary.failed_files


def test_an_outcome_dated_before_the_referral_names_its_element(tmp_path: Path) -> None:
    kid = syn.CinChild("C1", "UN1", "2015-01-01", "2024-04-10", s47="2024-04-03")
    _summary, sent = run(CinCensusReader(), la_mapper(), cin(tmp_path / "in", kid), tmp_path / "state")
    assert [p.reason for p in sent.dead_letters] == [
        "The referral's outcome (Section47 1 / S47ActualStartDate) is dated before CINreferralDate."
    ]


# -- 5. CTF: attendance per school ------------------------------------------------------------------
CTF = """<?xml version="1.0" encoding="utf-8"?>
<CTfile><Header><DocumentName>Common Transfer File</DocumentName><DateTime>2024-07-20T10:00:00</DateTime>
<SourceSchool><LEA>202</LEA><Estab>2001</Estab><URN>100001</URN><SchoolName>Synthetic Primary</SchoolName></SourceSchool>
<DestSchool><LEA>203</LEA><Estab>4001</Estab></DestSchool></Header>
<CTFpupilData><Pupil><UPN>{upn}</UPN><Surname>Test</Surname><Forename>Pupil</Forename><DOB>2014-05-01</DOB>
<Gender>F</Gender><Attendance>
<YearData><Year>2023</Year><LEA>204</LEA><Estab>3001</Estab><SessionsPossible>100</SessionsPossible>
<SessionsAuthorised>40</SessionsAuthorised><SessionsUnauthorised>20</SessionsUnauthorised></YearData>
<YearData><Year>2023</Year><LEA>202</LEA><Estab>2001</Estab><SessionsPossible>200</SessionsPossible>
<SessionsAuthorised>10</SessionsAuthorised><SessionsUnauthorised>15</SessionsUnauthorised></YearData>
</Attendance></Pupil></CTFpupilData></CTfile>
"""


def test_ctf_attendance_is_computed_and_attributed_per_school(tmp_path: Path) -> None:
    folder = tmp_path / "ctf"
    folder.mkdir()
    (folder / "ctf.xml").write_text(CTF.format(upn=synthetic_upn(random.Random(5), "202")))
    _summary, sent = run(CtfReader(), CtfMapper(), folder, tmp_path / "state")
    alerts = sorted(
        (e["source"]["organisation"], e["details"]["alert_level"], e["details"]["possible_sessions"])
        for e in sent.events
    )
    # The previous school (204/3001) recorded 60 of 100 sessions missed: SEVERE, and it is that
    # school's alert; the sending school's own 25 of 200 is PERSISTENT and its own.
    assert alerts == [("100001", "PERSISTENT", 200), ("2043001", "SEVERE", 100)]


def test_cin_plans_and_assessment_factors_are_mapped(tmp_path: Path) -> None:
    path = cin(tmp_path / "in", syn.CinChild("C5", "UN1", "2015-01-01", "2024-04-01"))
    modules = (
        "<Assessments><AssessmentActualStartDate>2024-04-02</AssessmentActualStartDate>"
        "<FactorsIdentifiedAtAssessment><AssessmentFactors>3A</AssessmentFactors>"
        "<AssessmentFactors>24A</AssessmentFactors><AssessmentFactors>1B</AssessmentFactors>"
        "</FactorsIdentifiedAtAssessment></Assessments>"
        "<CINPlanDates><CINPlanStartDate>2024-05-01</CINPlanStartDate>"
        "<CINPlanEndDate>2024-11-30</CINPlanEndDate></CINPlanDates>"
    )
    path.write_text(path.read_text().replace("</CINdetails>", modules + "</CINdetails>"))
    _, sent = run(CinCensusReader(), la_mapper(), path, tmp_path / "state")
    assert sent.dead_letters == []
    outcome, opened, closed = sent.events
    assert outcome["details"]["decision"] == "SECTION_17_ASSESSMENT"
    assert outcome["details"]["factors_identified"] == ["CRIMINAL_EXPLOITATION", "DOMESTIC_ABUSE"]
    assert [
        (e["event_type"], e["details"]["change"], e["details"]["case_type"]) for e in (opened, closed)
    ] == [
        ("FAMILY_HELP_CASE", "OPENED", "CHILD_IN_NEED"),
        ("FAMILY_HELP_CASE", "CLOSED", "CHILD_IN_NEED"),
    ]
    assert closed["details"]["closed_date"].isoformat() == "2024-11-30"
