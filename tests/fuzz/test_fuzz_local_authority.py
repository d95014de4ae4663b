"""The local-authority connector: CIN census values, SSDA903 tables, case-system family help
(CSV) and consent (JSON) exports."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from connectors.local_authority import CaseSystemReader, CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS

from .fuzzkit import CODECS, FUZZ, check, count, hostile_text, mutated, run_file

HEADER_ROWS = [
    {"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012", "UPN": "UN2"},
    {"CHILD": "L2", "SEX": "2", "DOB": "2010-05-05", "UPN": ""},
]
EPISODE_ROWS = [
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
    {"CHILD": "L2", "DECOM": "01/03/2024", "RNE": "S", "LS": "V2", "CIN": "N2", "PLACE": "U1"},
]
CASE_COLUMNS = [
    "LAchildID",
    "NHSnumber",
    "UPN",
    "PersonBirthDate",
    "CaseID",
    "CaseType",
    "OpenedDate",
    "ClosedDate",
    "ClosureReason",
    "Needs",
    "ConsentState",
    "LeadPractitionerTeam",
    "LeadPractitionerPhone",
    "LeadPractitionerEmail",
]
CASE_ROWS = [
    {
        "LAchildID": "F1",
        "NHSnumber": "9990000018",
        "CaseID": "K1",
        "CaseType": "TARGETED_EARLY_HELP",
        "OpenedDate": "02/01/2025",
        "ClosedDate": "01/03/2025",
        "ClosureReason": "NEEDS_MET",
        "Needs": "HOUSING; DOMESTIC_ABUSE",
        "ConsentState": "GIVEN",
        "LeadPractitionerTeam": "Team A",
    },
    {
        "LAchildID": "F2",
        "CaseID": "K2",
        "CaseType": "CHILD_IN_NEED",
        "OpenedDate": "2025-02-10",
        "PersonBirthDate": "2015-01-01",
    },
]
CONSENTS = [
    {
        "ConsentID": "S1",
        "LAchildID": "F1",
        "Audience": "FAMILY_HELP",
        "State": "GIVEN",
        "GivenBy": "PARENT",
        "RecordedAt": "2025-01-02T09:00:00+00:00",
        "RecordedBy": "Family help",
    },
    {
        "ConsentID": "S2",
        "NHSnumber": "9990000018",
        "Audience": "ALL",
        "State": "WITHDRAWN",
        "RecordedAt": "2025-01-03",
        "RecordedBy": "Family help",
    },
]


def _csv(columns: list[str] | tuple[str, ...], rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in columns} for r in rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


def _ssda903(workdir: Path, header: bytes, episodes: bytes) -> None:
    folder = workdir / "903"
    folder.mkdir(exist_ok=True)
    (folder / "header.csv").write_bytes(header)
    (folder / "episodes.csv").write_bytes(episodes)
    mapper = LaMapper(LaProfile(la_code="202"), "ssda903")
    check(run_file(Ssda903Reader("202"), mapper, folder / "episodes.csv"))
    check(run_file(Ssda903Reader("202"), mapper, folder / "header.csv"))


SEED_HEADER = _csv(HEADER_COLUMNS, HEADER_ROWS)
SEED_EPISODES = _csv(EPISODE_COLUMNS, EPISODE_ROWS)


@FUZZ
@given(st.booleans(), st.data())
def test_mutated_ssda903(workdir: Path, which: bool, data: st.DataObject) -> None:
    count("la ssda903: mutated table")
    if which:
        _ssda903(workdir, data.draw(mutated(SEED_HEADER)), SEED_EPISODES)
    else:
        _ssda903(workdir, SEED_HEADER, data.draw(mutated(SEED_EPISODES)))


@FUZZ
@given(st.integers(0, 2), st.sampled_from(list(EPISODE_COLUMNS) + list(HEADER_COLUMNS)), hostile_text())
@example(0, "DECOM", "31/12/9999")
@example(1, "DEC", "01/01/0001")
def test_ssda903_hostile_values(workdir: Path, row: int, column: str, value: str) -> None:
    count("la ssda903: hostile value")
    episodes = [dict(r) for r in EPISODE_ROWS]
    header = [dict(r) for r in HEADER_ROWS]
    if column in EPISODE_COLUMNS:
        episodes[row][column] = value
    else:
        header[row % 2][column] = value
    _ssda903(workdir, _csv(HEADER_COLUMNS, header), _csv(EPISODE_COLUMNS, episodes))


def _cases(workdir: Path, data: bytes, name: str = "cases.csv") -> None:
    path = workdir / name
    path.write_bytes(data)
    check(
        run_file(
            CaseSystemReader("family-help", "202"), LaMapper(LaProfile(la_code="202"), "case-system"), path
        )
    )


def _consents(workdir: Path, data: bytes, name: str = "consent.json") -> None:
    path = workdir / name
    path.write_bytes(data)
    profile = LaProfile(la_code="202", xref={"F1": "9990000018"})
    check(
        run_file(
            CaseSystemReader("consent", "202"),
            LaMapper(profile, "case-system"),
            path,
            encode=CODECS.consent.encode,
        )
    )


@FUZZ
@given(st.data())
def test_mutated_family_help(workdir: Path, data: st.DataObject) -> None:
    count("la family help: mutated file")
    _cases(workdir, data.draw(mutated(_csv(CASE_COLUMNS, CASE_ROWS))))


@FUZZ
@given(st.integers(0, 1), st.sampled_from(CASE_COLUMNS), hostile_text())
@example(0, "ClosedDate", "31/12/9999")
@example(0, "Needs", ";" * 1000)
def test_family_help_hostile_values(workdir: Path, row: int, column: str, value: str) -> None:
    count("la family help: hostile value")
    rows = [dict(r) for r in CASE_ROWS]
    rows[row][column] = value
    _cases(workdir, _csv(CASE_COLUMNS, rows))


CONSENT_JSON = json.dumps(CONSENTS).encode()
CONSENT_NDJSON = b"".join(json.dumps(c).encode() + b"\n" for c in CONSENTS)


@FUZZ
@given(st.booleans(), st.data())
def test_mutated_consent(workdir: Path, lines: bool, data: st.DataObject) -> None:
    count("la consent: mutated file")
    seed = CONSENT_NDJSON if lines else CONSENT_JSON
    _consents(workdir, data.draw(mutated(seed)), "consent.ndjson" if lines else "consent.json")


WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    hostile_text(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@FUZZ
@given(st.integers(0, 1), st.sampled_from(sorted({k for c in CONSENTS for k in c} | {"Purpose"})), WRONG)
@example(0, "RecordedAt", "9999-12-31T23:59:59-23:59")  # past year 9999 in UTC
@example(0, "RecordedAt", "0001-01-01T00:00:00+23:59")  # before year 1 in UTC
@example(0, "RecordedAt", 10**30)
@example(0, "ConsentID", False)  # was AttributeError in the mapping
@example(1, "LAchildID", {"a": 1})
def test_consent_wrong_types(workdir: Path, index: int, key: str, value: object) -> None:
    count("la consent: wrong types")
    records = json.loads(CONSENT_JSON)
    records[index][key] = value
    _consents(workdir, json.dumps(records).encode())


CIN_ELEMENTS = [
    "LAchildID",
    "UPN",
    "PersonBirthDate",
    "CINreferralDate",
    "ReferralNFA",
    "S47ActualStartDate",
    "CPPstartDate",
    "CPPendDate",
    "InitialCategoryOfAbuse",
    "LatestCategoryOfAbuse",
    "LEA",
    "ReferenceDate",
    "DateTime",
    "ReferralSource",
    "PrimaryNeedCode",
]


@FUZZ
@given(st.sampled_from(CIN_ELEMENTS), st.integers(0, 3), hostile_text())
@example("CPPstartDate", 3, "9999-12-31")
@example("CINreferralDate", 0, "0001-01-01")
def test_cin_hostile_values(workdir: Path, name: str, which: int, value: str) -> None:
    count("la cin: hostile value")
    from xml.sax.saxutils import escape

    text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = "".join(c for c in text if c in "\t\n\r" or c >= " ")
    base = syn.write_cin(workdir / "cin-seed.xml", syn.cin_children(4, random.Random(51))).read_text("utf-8")
    open_tag, close_tag = f"<{name}>", f"</{name}>"
    at = -1
    for _ in range(which + 1):
        nxt = base.find(open_tag, at + 1)
        if nxt < 0:
            break
        at = nxt
    if at < 0:
        return
    end = base.index(close_tag, at)
    path = workdir / "cin.xml"
    path.write_text(base[: at + len(open_tag)] + escape(text) + base[end:], encoding="utf-8")
    check(run_file(CinCensusReader("202"), LaMapper(LaProfile(la_code="202"), "cin-census"), path))
