"""Local-authority connector, pure parts: dates, CIN census facts and events, SSDA903 periods,
case-system rows, snapshot diffing (start, end, no change, re-run), and bounded memory."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from connectors.exceptions import MappingError, NoEvent, SourceFileError
from connectors.local_authority import CaseSystemReader, CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.snapshots import SnapshotMapper, SnapshotStore, parse_date
from schemas.child_keys import child_key
from schemas.identifiers import synthetic_nhs_number

REPO = Path(__file__).resolve().parents[2]


def ref(path: Path) -> FileRef:
    return FileRef(path, "la-test", path.name, path.name)


def run(reader: Any, mapper: Any, path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Events and (position, reason) dead letters of one file, as the pipeline would route them."""
    events, dead = [], []
    for record in reader.records(ref(path)):
        if isinstance(record.data, Malformed):
            dead.append((record.position, record.data.reason))
            continue
        try:
            events.append(mapper(record))
        except NoEvent:
            continue
        except MappingError as exc:
            dead.append((record.position, str(exc)))
    return events, dead


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-04-01", "2024-04-01"),
        (" 01/04/2024 ", "2024-04-01"),
        ("1/4/24", "2024-04-01"),
        ("01/04/99", "1999-04-01"),
        ("2024-04-01T10:00:00", "2024-04-01"),
    ],
)
def test_dates_in_every_style(text: str, iso: str) -> None:
    parsed = parse_date(text, "CPPstartDate")
    assert parsed is not None and parsed.isoformat() == iso


@pytest.mark.parametrize("text", ["31/02/2024", "2024-13-01", "soon"])
def test_impossible_dates_name_the_element_not_the_value(text: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_date(text, "CPPstartDate")
    assert "CPPstartDate" in str(err.value) and text not in str(err.value)


def test_cin_census_maps_referrals_s47_and_plans_with_xref(tmp_path: Path) -> None:
    rng = random.Random(1)
    kids = [
        syn.CinChild("C1", "UN1", "2015-01-01", "01/04/2024", nfa=True),
        syn.CinChild(
            "C2",
            syn.synthetic_upn(rng, "202"),
            "2015-01-01",
            "2024-04-01",
            s47="03/04/2024",
            cpp_start="2024-04-20",
            cpp_end="2024-10-01",
            abuse="EMO",
        ),
        syn.CinChild("C3", syn.synthetic_upn(rng, "202"), "2015-01-01", "2024-04-01", cpp_start="31/02/2024"),
    ]
    path = syn.write_cin(tmp_path / "cin.xml", kids)
    nhs = synthetic_nhs_number(rng)
    events, dead = run(CinCensusReader(), LaMapper(LaProfile(xref={"C2": nhs}), "cin-census"), path)
    kinds = [
        (
            e["event_type"],
            e["child"]["la_child_id"],
            e["details"].get("change") or e["details"].get("decision"),
        )
        for e in events
    ]
    assert kinds == [
        ("REFERRAL_OUTCOME", "C1", "NO_FURTHER_ACTION"),
        ("REFERRAL_OUTCOME", "C2", "SECTION_47_ENQUIRY"),
        ("STRATEGY_DISCUSSION", "C2", None),
        ("CHILD_PROTECTION_PLAN", "C2", "STARTED"),
        ("CHILD_PROTECTION_PLAN", "C2", "ENDED"),
    ]
    c1, c2 = events[0], events[1]
    assert c1["child"]["upn"] is None and child_key(c1["child"]) == "la:202:C1"  # UN1 is a reason, not a UPN
    assert c2["child"]["nhs_number"] == nhs and child_key(c2["child"]) == f"nhs:{nhs}"
    assert events[4]["details"]["category_of_abuse"] == "EMOTIONAL_ABUSE"
    assert (
        events[0]["source"]["organisation"] == "202"
        and events[0]["details"]["referrer_audience"] == "SCHOOL_DSL"
    )
    # C3's impossible start date: its plan is dead-lettered by element, the rest went through.
    assert dead == [("Child 3 / CINdetails 1 / ChildProtectionPlans 1", "CPPstartDate is not a real date.")]


def test_cin_file_with_a_dtd_or_entities_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<Message><Children><Child>&x;</Child></Children></Message>"
    )
    with pytest.raises(SourceFileError, match="DTD or entities"):
        list(CinCensusReader().records(ref(path)))


def returns(tmp_path: Path, store: SnapshotStore, *kids: syn.CinChild) -> list[tuple[str, Any]]:
    """Run one return through the snapshot mapper and 'commit' what it published."""
    path = syn.write_cin(tmp_path / f"cin-{len(list(tmp_path.iterdir()))}.xml", kids)
    mapper = SnapshotMapper(LaMapper(LaProfile(), "cin-census"), store)
    out, keys = [], []
    for record in CinCensusReader().records(ref(path)):
        try:
            event = mapper(record)
        except NoEvent:
            continue
        keys.append((record.file_id, record.ordinal))
        out.append((event["event_type"], event["details"].get("change")))
    store.published(keys)
    return out


def test_snapshot_diffing_start_no_change_end_and_rerun(tmp_path: Path) -> None:
    state, files = tmp_path / "state", tmp_path / "files"
    files.mkdir()
    upn = syn.synthetic_upn(random.Random(2), "202")
    open_plan = syn.CinChild("C9", upn, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-20")
    assert returns(files, SnapshotStore(state), open_plan) == [
        ("REFERRAL_OUTCOME", None),
        ("STRATEGY_DISCUSSION", None),
        ("CHILD_PROTECTION_PLAN", "STARTED"),
    ]
    # The same facts next month (dates now written dd/mm/yyyy): nothing has changed.
    restated = syn.CinChild("C9", upn, "01/01/2015", "01/04/2024", s47="03/04/2024", cpp_start="20/04/2024")
    assert returns(files, SnapshotStore(state), restated) == []
    ended = syn.CinChild(
        "C9", upn, "2015-01-01", "2024-04-01", s47="2024-04-03", cpp_start="2024-04-20", cpp_end="2024-09-30"
    )
    assert returns(files, SnapshotStore(state), ended) == [("CHILD_PROTECTION_PLAN", "ENDED")]
    assert returns(files, SnapshotStore(state), ended) == []  # re-run publishes nothing
    assert "C9" not in (state / "snapshot.log").read_text()  # keys are hashed


def test_ssda903_periods_of_care(tmp_path: Path) -> None:
    folder = tmp_path / "903"
    folder.mkdir()
    syn.write_csv(
        folder / "header.csv",
        HEADER_COLUMNS,
        [
            {"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012", "UPN": "UN2"},
            {"CHILD": "L2", "SEX": "2", "DOB": "2010-05-05", "UPN": ""},
        ],
    )
    syn.write_csv(
        folder / "episodes.csv",
        EPISODE_COLUMNS,
        [
            {
                "CHILD": "L1",
                "DECOM": "01/04/2023",
                "RNE": "S",
                "LS": "C2",
                "CIN": "N1",
                "PLACE": "U1",
                "DEC": "01/06/2023",
                "REC": "X1",
            },
            {
                "CHILD": "L1",
                "DECOM": "01/06/2023",
                "RNE": "P",
                "LS": "C2",
                "CIN": "N1",
                "PLACE": "U3",
                "DEC": "15/01/2024",
                "REC": "E11",
            },
            {"CHILD": "L1", "DECOM": "01/03/2024", "RNE": "S", "LS": "V2", "CIN": "N2", "PLACE": "U1"},
            {"CHILD": "L2", "DECOM": "30/02/2024", "RNE": "S", "LS": "C2", "CIN": "N1", "PLACE": "U1"},
            {"CHILD": "L3", "DECOM": "2024-01-10", "RNE": "S", "LS": "ZZ", "CIN": "N1", "PLACE": "U1"},
        ],
    )
    events, dead = run(
        Ssda903Reader("202"), LaMapper(LaProfile(la_code="202"), "ssda903"), folder / "episodes.csv"
    )
    got = [
        (
            e["child"]["la_child_id"],
            e["details"]["change"],
            str(e["details"]["start_date"]),
            str(e["details"]["end_date"]),
        )
        for e in events
    ]
    assert got == [
        ("L1", "STARTED", "2023-04-01", "None"),
        ("L1", "ENDED", "2023-04-01", "2024-01-15"),
        ("L1", "STARTED", "2024-03-01", "None"),
    ]
    assert (
        events[0]["child"]["date_of_birth"].isoformat() == "2012-02-01" and events[0]["child"]["upn"] is None
    )
    assert events[1]["details"]["reason_ended"] == "E11" and events[2]["details"]["legal_status"] == "V2"
    assert dead == [
        ("row 5", "DECOM is not a real date."),
        ("row 6 (period of care starts)", "LS is not an SSDA903 legal status code."),
    ]
    assert list(Ssda903Reader("202").records(ref(folder / "header.csv"))) == []


def test_family_help_and_consent_rows(tmp_path: Path) -> None:
    nhs = synthetic_nhs_number(random.Random(3))
    cases = syn.write_csv(
        tmp_path / "cases.csv",
        [
            "LAchildID",
            "NHSnumber",
            "CaseID",
            "CaseType",
            "OpenedDate",
            "ClosedDate",
            "ClosureReason",
            "Needs",
            "ConsentState",
        ],
        [
            {
                "LAchildID": "F1",
                "NHSnumber": nhs,
                "CaseID": "K1",
                "CaseType": "targeted early help",
                "OpenedDate": "02/01/2025",
                "ClosedDate": "01/03/2025",
                "ClosureReason": "NEEDS_MET",
                "Needs": "HOUSING; DOMESTIC_ABUSE",
                "ConsentState": "GIVEN",
            },
            {"LAchildID": "F2", "CaseID": "K2", "CaseType": "CHILD_IN_NEED", "OpenedDate": "2025-02-30"},
        ],
    )
    events, dead = run(
        CaseSystemReader("family-help", "202"), LaMapper(LaProfile(la_code="202"), "case-system"), cases
    )
    assert [(e["details"]["change"], e["details"]["case_type"]) for e in events] == [
        ("OPENED", "TARGETED_EARLY_HELP"),
        ("CLOSED", "TARGETED_EARLY_HELP"),
    ]
    assert (
        events[1]["details"]["needs"] == ["HOUSING", "DOMESTIC_ABUSE"]
        and events[0]["child"]["nhs_number"] == nhs
    )
    assert dead == [("row 3 (opened)", "OpenedDate is not a real date.")]

    consents = tmp_path / "consent.json"
    consents.write_text(
        '[{"ConsentID": "S1", "LAchildID": "F1", "Audience": "FAMILY_HELP", "State": "GIVEN", '
        '"GivenBy": "PARENT", "RecordedAt": "2025-01-02T09:00:00+00:00", "RecordedBy": "Family help"},'
        '{"ConsentID": "S2", "LAchildID": "F1", "Audience": "EVERYONE", "State": "GIVEN",'
        ' "RecordedAt": "2025-01-02", "RecordedBy": "Family help"}]'
    )
    profile = LaProfile(la_code="202", xref={"F1": nhs})
    records, dead = run(CaseSystemReader("consent", "202"), LaMapper(profile, "case-system"), consents)
    assert (
        records[0]["nhs_number"] == nhs
        and records[0]["state"] == "GIVEN"
        and records[0]["purpose"] == "FAMILY_HELP"
    )
    assert dead == [
        (
            "record 2",
            "Audience is not one of MASH, FAMILY_HELP, SCHOOL_DSL, GP, HEALTH_SAFEGUARDING, "
            "EMERGENCY_CARE, POLICE_PPU, ALL.",
        )
    ]


MEMORY_PROBE = textwrap.dedent(
    """
    import random, resource, sys, time
    from pathlib import Path
    from connectors.local_authority import CinCensusReader, LaMapper, LaProfile, synthetic as syn
    from connectors.runtime.readers import FileRef
    path = Path(sys.argv[1])
    syn.write_cin(path, syn.cin_children(100_000, random.Random(5)))
    mapper = LaMapper(LaProfile(), "cin-census")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began, children, events = time.monotonic(), set(), 0
    for record in CinCensusReader().records(FileRef(path, "mem", path.name, "id")):
        mapper(record)
        events += 1
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(path.stat().st_size, events, (after - before) * 1024, round(time.monotonic() - began, 1))
    """
)


def test_a_100000_child_census_streams_in_bounded_memory(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(tmp_path / "big.xml")],
        capture_output=True,
        text=True,
        timeout=280,  # a slow machine under load: pytest-timeout (300 s) is the bound
        cwd=REPO,
        check=True,
    ).stdout.split()
    size, events, growth = int(out[0]), int(out[1]), int(out[2])
    assert events == 150_000  # 75,000 referral outcomes, 50,000 S47s, 25,000 plans
    assert size > 40_000_000
    assert growth < 25_000_000, f"peak RSS grew by {growth / 1e6:.0f} MB reading a {size / 1e6:.0f} MB file"
