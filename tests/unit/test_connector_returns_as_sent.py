"""Local-authority and school returns as authorities really send them (issue 15), with no Kafka:
the file loop runs with the dry-run delivery, so every record's fate is visible.

A bad field withholds that field, not the child; pre-birth work is valid; a truncated file
publishes nothing and is dead-lettered once; unsupported files are named; a full SSDA903
extract is read table by table; CTF attendance is per school; the accounting adds up.
"""

from __future__ import annotations

import csv
import random
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from factories import KeepingDelivery

from connectors.education import CtfMapper, CtfReader
from connectors.exceptions import MappingError
from connectors.local_authority import CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as syn
from connectors.local_authority.identity import child_identity
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.event_builder import checked_child
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.summary import Summary
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import synthetic_upn, validate_upn


def run(reader: Any, map_record: Any, source: Path, state: Path) -> tuple[Summary, KeepingDelivery]:
    delivery = KeepingDelivery()
    runner = FileConnector("la-test", reader, map_record, delivery, CheckpointStore(state))
    return runner.run_batch(source, threading.Event()), delivery


def bad_upn(rng: random.Random) -> str:
    """A UPN whose check letter is wrong (the rest of it well formed)."""
    upn = synthetic_upn(rng, "202")
    letter = next(c for c in "ABCDEFGHJKLMNPQRTUVWXYZ" if c != upn[0])
    return letter + upn[1:]


def cin(folder: Path, *kids: syn.CinChild, name: str = "cin.xml", la: str = "202") -> Path:
    folder.mkdir(exist_ok=True)
    return syn.write_cin(folder / name, kids, la)


def la_mapper(system: str = "cin-census") -> LaMapper:
    return LaMapper(LaProfile(), system)


def accounted(summary: Summary) -> bool:
    """Every record read was published, dead-lettered or had nothing to publish."""
    c = summary.counts
    return c["read"] == c["published"] + c["dead_lettered"] + c["no_event"] + c["already_done"]


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


# -- 3. SSDA903 as returned ---------------------------------------------------------------------------
def episode(child: str, decom: str, dec: str = "", rec: str = "", **more: str) -> dict[str, str]:
    row = {
        "CHILD": child,
        "DECOM": decom,
        "RNE": "S",
        "LS": "C2",
        "CIN": "N1",
        "PLACE": "U1",
        "DEC": dec,
        "REC": rec,
    }
    return {**row, **more}


def extract(folder: Path, episodes: list[dict[str, str]], header: list[dict[str, str]] | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    people = header or sorted(
        ({"CHILD": e["CHILD"], "SEX": "1", "DOB": "01/02/2012", "ETHNIC": "WBRI"} for e in episodes),
        key=lambda r: r["CHILD"],
    )
    unique = list({r["CHILD"] + r["DOB"]: r for r in people}.values())
    syn.write_csv(folder / "header.csv", HEADER_COLUMNS, unique)
    syn.write_csv(folder / "episodes.csv", EPISODE_COLUMNS, episodes)
    return folder


MISSING_COLUMNS = ("CHILD", "DOB", "MISSING", "MIS_START", "MIS_END")
OTHER_TABLES = {
    "uasc.csv": ("CHILD", "SEX", "DOB", "DUC"),
    "reviews.csv": ("CHILD", "DOB", "REVIEW", "REVIEW_CODE"),
    "oc2.csv": ("CHILD", "DOB", "SDQ_SCORE", "SDQ_REASON", "CONVICTED", "HEALTH_CHECK", "IMMUNISATIONS"),
    "oc3.csv": ("CHILD", "DOB", "IN_TOUCH", "ACTIV", "ACCOM"),
    "ad1.csv": (
        "CHILD",
        "DOB",
        "DATE_INT",
        "DATE_MATCH",
        "FOSTER_CARE",
        "NB_ADOPTR",
        "SEX_ADOPTR",
        "LS_ADOPTR",
    ),
    "placed_for_adoption.csv": ("CHILD", "DOB", "DATE_PLACED", "DATE_PLACED_CEASED", "REASON_PLACED_CEASED"),
    "previous_permanence.csv": ("CHILD", "DOB", "PREV_PERM", "LA_PERM", "DATE_PERM"),
    "sw_episodes.csv": ("CHILD", "SW_ID", "SW_DECOM", "SW_DEC", "SW_REASON"),
    "dolo.csv": ("CHILD", "DOLO_START", "DOLO_END"),
}


def test_a_full_extract_is_read_table_by_table(tmp_path: Path) -> None:
    folder = extract(
        tmp_path / "903", [episode("L1", "01/04/2023", "15/01/2024", "E11"), episode("L2", "01/03/2024")]
    )
    for name, columns in OTHER_TABLES.items():
        syn.write_csv(folder / name, columns, [{"CHILD": "L1"}])
    syn.write_csv(
        folder / "missing.csv",
        MISSING_COLUMNS,
        [
            {
                "CHILD": "L2",
                "DOB": "01/02/2012",
                "MISSING": "M",
                "MIS_START": "05/03/2024",
                "MIS_END": "07/03/2024",
            }
        ],
    )
    state = tmp_path / "state"
    summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, state)
    assert not summary.failed_files and summary.unsupported == []
    assert dict(summary.skipped_tables) == {
        "header": 1, "uasc": 1, "reviews": 1, "oc2": 1, "oc3": 1, "ad1": 1,
        "placed_for_adoption": 1, "previous_permanence": 1, "sw_episodes": 1, "dolo": 1,
    }  # fmt: skip
    kinds = sorted((e["event_type"], e["details"]["change"], e["child"]["la_child_id"]) for e in sent.events)
    assert kinds == [
        ("LOOKED_AFTER_STATUS", "ENDED", "L1"),
        ("LOOKED_AFTER_STATUS", "STARTED", "L1"),
        ("LOOKED_AFTER_STATUS", "STARTED", "L2"),
        ("MISSING_EPISODE", "REPORTED", "L2"),
        ("MISSING_EPISODE", "RETURNED", "L2"),
    ]
    missing = next(e for e in sent.events if e["details"]["change"] == "RETURNED")
    assert missing["details"]["missing_from"] == "CARE_PLACEMENT" and missing["child"]["date_of_birth"]
    # The skipped tables are checkpointed: the next run does not read them again.
    again, _ = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, state)
    assert not again.skipped_tables and again.counts["already_done"] == summary.counts["read"]


def test_a_row_with_the_wrong_width_holds_back_that_child(tmp_path: Path) -> None:
    folder = extract(
        tmp_path / "903",
        [
            episode("L1", "01/04/2023", "01/06/2023", "X1"),
            episode("L1", "01/06/2023", "15/01/2024", "E11"),
            episode("L2", "01/03/2024"),
        ],
    )
    lines = (folder / "episodes.csv").read_text().splitlines()
    lines[2] += ",extra"  # L1's second episode has one field too many
    (folder / "episodes.csv").write_text("\n".join(lines) + "\n")
    summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert [e["child"]["la_child_id"] for e in sent.events] == ["L2"]  # L1 does not look still in care
    assert [(p.position, p.reason.split(":")[0]) for p in sent.dead_letters] == [
        ("row 2 (period of care starts)", "Held back"),
        ("row 3", "The row has 14 fields but the header has 13."),
    ]
    assert accounted(summary)


def test_two_different_header_rows_hold_back_that_child(tmp_path: Path) -> None:
    header = [
        {"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012", "ETHNIC": "WBRI"},
        {"CHILD": "L1", "SEX": "1", "DOB": "21/03/2010", "ETHNIC": "WBRI"},
        {"CHILD": "L2", "SEX": "2", "DOB": "01/02/2012", "ETHNIC": "WBRI"},
    ]
    folder = extract(tmp_path / "903", [episode("L1", "01/04/2023"), episode("L2", "01/04/2023")], header)
    _summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert [e["child"]["la_child_id"] for e in sent.events] == ["L2"]
    assert [p.reason for p in sent.dead_letters] == [
        "Held back: the header table has two different rows for this CHILD; this child waits for a corrected extract."
    ]


def test_overlapping_episodes_are_published_with_a_finding(tmp_path: Path) -> None:
    folder = extract(
        tmp_path / "903",
        [episode("L1", "01/04/2023", "01/08/2023", "X1"), episode("L1", "01/06/2023", "15/01/2024", "E11")],
    )
    _summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert [e["details"]["change"] for e in sent.events] == ["STARTED", "ENDED"]
    assert {p.reason for p in sent.findings} == {
        "details.start_date doubtful: The child's episodes at row 2 and row 3 overlap; the period of care may be wrong."
    }


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("cp1252", ","), ("utf-16", "\t"), ("utf-8", ";"), ("utf-8-sig", ",")],
)
def test_tables_in_the_encodings_and_delimiters_excel_writes(
    tmp_path: Path, encoding: str, delimiter: str
) -> None:
    folder = tmp_path / "903"
    folder.mkdir()
    for name, columns, rows in (
        ("header.csv", HEADER_COLUMNS, [{"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012", "ETHNIC": "WBRI"}]),
        (
            "episodes.csv",
            EPISODE_COLUMNS,
            [episode("L1", "01/04/2023", "15/01/2024", "E11", PL_POST="Café £1")],
        ),
    ):
        with (folder / name).open("w", encoding=encoding, newline="") as fh:
            out = csv.DictWriter(fh, columns, delimiter=delimiter)
            out.writeheader()
            out.writerows({c: r.get(c, "") for c in columns} for r in rows)
    summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert not summary.failed_files and sent.dead_letters == []
    assert [e["details"]["change"] for e in sent.events] == ["STARTED", "ENDED"]


def test_a_table_in_no_known_encoding_is_refused_in_a_sentence(tmp_path: Path) -> None:
    folder = extract(tmp_path / "903", [episode("L1", "01/04/2023")])
    (folder / "episodes.csv").write_bytes(
        (folder / "episodes.csv").read_bytes() + b"L2,\x81\x8d\x8f\x90\x9d\n"
    )
    summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert summary.failed_files == [
        "File episodes.csv is not text in utf-8 or cp1252; give its encoding with --encoding."
    ]
    assert sent.published == 0


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


EXPORT = """<?xml version="1.0" encoding="utf-8"?>
<EXPSSDA903>
<CHILD><HEADER><CHILDID>X1</CHILDID><UPN>UN2</UPN><SEX>1</SEX><DOB>01/02/2012</DOB><ETHNIC>WBRI</ETHNIC></HEADER>
<EPISODE><DECOM>01/04/2023</DECOM><RNE>S</RNE><LS>C2</LS><CIN>N1</CIN><PL>U1</PL><DEC>01/06/2023</DEC><REC>X1</REC></EPISODE>
<EPISODE><DECOM>01/06/2023</DECOM><RNE>P</RNE><LS>C2</LS><CIN>N1</CIN><PL>U3</PL><DEC>15/01/2024</DEC><REC>E11</REC></EPISODE>
</CHILD>
<CHILD><HEADER><CHILDID>X2</CHILDID><SEX>2</SEX><DOB>05/05/2010</DOB><ETHNIC>WBRI</ETHNIC></HEADER>
<EPISODE><DECOM>31/02/2024</DECOM><RNE>S</RNE><LS>C2</LS><CIN>N1</CIN><PL>U1</PL></EPISODE>
</CHILD>
</EXPSSDA903>
"""


def test_the_903_xml_export_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "903"
    folder.mkdir()
    (folder / "ssda903.xml").write_text(EXPORT)
    summary, sent = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "state")
    assert [
        (e["child"]["la_child_id"], e["details"]["change"], e["details"]["placement_type"])
        for e in sent.events
    ] == [
        ("X1", "STARTED", "U1"),
        ("X1", "ENDED", "U3"),
    ]
    assert [(p.position, p.reason) for p in sent.dead_letters] == [
        (
            "CHILD 2",
            "Held back: EPISODE 1 / DECOM is not a real date. This child waits for a corrected export.",
        )
    ]
    assert accounted(summary) and summary.counts["read"] == 3


def test_an_encoding_given_reads_what_detection_refuses(tmp_path: Path) -> None:
    folder = extract(tmp_path / "903", [episode("L1", "01/04/2023")])
    table = folder / "episodes.csv"
    table.write_bytes(table.read_bytes().replace(b"U1", b"U1\x81"))  # undefined in cp1252, fine in latin-1
    detected, _ = run(Ssda903Reader("202"), la_mapper("ssda903"), folder, tmp_path / "s1")
    assert detected.failed_files
    given, sent = run(Ssda903Reader("202", encoding="latin-1"), la_mapper("ssda903"), folder, tmp_path / "s2")
    assert not given.failed_files and sent.published == 1
