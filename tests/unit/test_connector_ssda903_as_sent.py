"""SSDA903 returns as authorities really send them (issue 15), with no Kafka: a full extract
read table by table, width and duplicate-header hold-backs, overlap findings, the encodings and
delimiters Excel writes, and the XML export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from la_returns import accounted, la_mapper, run

from connectors.local_authority import Ssda903Reader
from connectors.local_authority import synthetic as syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS


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
