"""Police mapping: the shipped mapping files on synthetic exports, row errors that name the column
and never the value, and bad mapping files that stop with one sentence naming file and field."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.exceptions import MappingError, MappingFileError, NoEvent
from connectors.police import PoliceMapper, load_mapping, reader_for
from connectors.police import synthetic as syn
from connectors.runtime.event_builder import take_findings
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord

MAPPINGS = Path(__file__).resolve().parents[2] / "connectors" / "mappings"


def records(path: Path, mapping_name: str) -> list[SourceRecord]:
    mapping = load_mapping(MAPPINGS / mapping_name)
    return list(reader_for(mapping, None).records(FileRef(path, "police-test", path.name, "f" * 32)))


def mapped(path: Path, mapping_name: str) -> list[dict[str, Any] | str]:
    mapper = PoliceMapper(load_mapping(MAPPINGS / mapping_name))
    out: list[dict[str, Any] | str] = []
    for record in records(path, mapping_name):
        try:
            out.append(mapper(record))
        except MappingError as exc:
            out.append(str(exc))
    return out


@pytest.mark.parametrize(
    "name", ["police-domestic-abuse.yaml", "police-missing-episode.yaml", "police-exploitation-concern.yaml"]
)
def test_shipped_mapping_files_load(name: str) -> None:
    mapping = load_mapping(MAPPINGS / name)
    assert mapping.columns


def test_domestic_abuse_rows_become_events(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(4, random.Random(1))
    out = mapped(
        syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows), "police-domestic-abuse.yaml"
    )
    event = out[0]
    assert isinstance(event, dict)
    assert event["event_type"] == "DOMESTIC_ABUSE_INCIDENT" and event["risk"] == "SIGNIFICANT_HARM"
    assert event["source"] == {
        "agency": "POLICE",
        "organisation": "metropolitan",
        "organisation_name": "Metropolitan Police Service",
        "system": "rms-nightly-export",
        "record_id": "INC-0000001",
        "contact": {
            "team": "Public Protection Unit (Operation Encompass desk)",
            "phone": "020 7946 0000",
            "email": None,
            "reference": "INC-0000001",
        },
    }
    occurred = event["occurred_at"]
    assert occurred.astimezone(UTC) == datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # GMT in November
    assert event["child"]["nhs_number"] == rows[0]["ChildNHSNumber"]
    assert event["child"]["date_of_birth"] == date(2012, 1, 1)
    assert event["child"]["address"] == {
        "line1": "1 Synthetic Row",
        "line2": None,
        "town": "Testford",
        "postcode": "ZZ99 3WZ",
    }
    assert event["details"]["offence_types"] == ["Common assault", "Criminal damage"]
    assert event["details"]["child_present"] is False and event["details"]["dash_risk_level"] == "STANDARD"
    assert event["related_people"][0]["role"] == "ALLEGED_PERPETRATOR"
    assert event["narrative"] == "Synthetic narrative for testing only."


def test_event_ids_are_deterministic_per_position(tmp_path: Path) -> None:
    path = syn.write_csv(
        tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, syn.domestic_abuse_rows(3, random.Random(1))
    )
    first = [r.event_id for r in records(path, "police-domestic-abuse.yaml")]
    again = [r.event_id for r in records(path, "police-domestic-abuse.yaml")]
    assert first == again and len(set(first)) == 3


def test_bad_rows_are_rejected_with_reasons_that_hold_no_values(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(6, random.Random(2), bad=[0, 1, 2])
    out = mapped(
        syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows), "police-domestic-abuse.yaml"
    )
    assert out[:3] == [
        "child.nhs_number: NHS number check digit does not match.",
        "Column 'IncidentDateTime' (occurred_at) is not a date and time in the format %d/%m/%Y %H:%M.",
        "Column 'RiskToChild' (risk) has a value the mapping's values table does not list.",
    ]
    assert all(isinstance(e, dict) for e in out[3:])
    for reason, row in zip(out[:3], rows[:3], strict=True):
        assert isinstance(reason, str)
        assert not any(len(v) > 3 and v in reason for v in row.values())


def test_required_field_empty_and_adults_are_rejected(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(2, random.Random(3))
    rows[0]["IncidentDateTime"] = ""
    rows[1]["ChildDOB"] = "01/01/1990"
    out = mapped(
        syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows), "police-domestic-abuse.yaml"
    )
    assert isinstance(out[0], str) and out[0].startswith("Column 'IncidentDateTime' (")
    assert out[0].endswith(") is empty, and the field is required.")
    assert isinstance(out[1], str) and "18 or over" in out[1]


def test_missing_episode_value_tables(tmp_path: Path) -> None:
    rows = syn.missing_episode_rows(4, random.Random(4))
    out = mapped(
        syn.write_csv(tmp_path / "m.csv", syn.MISSING_EPISODE_COLUMNS, rows), "police-missing-episode.yaml"
    )
    assert [e["details"]["change"] for e in out if isinstance(e, dict)] == ["REPORTED", "RETURNED"] * 2
    returned = out[1]
    assert isinstance(returned, dict)
    assert (
        returned["details"]["missing_from"] == "CARE_PLACEMENT"
        and returned["details"]["episodes_last_12_months"] == 2
    )
    assert returned["details"]["returned_at"] is not None and returned["risk"] == "NEEDS_SUPPORT"


def test_exploitation_json_with_nested_members_and_lists(tmp_path: Path) -> None:
    path = syn.write_json(tmp_path / "e.json", syn.exploitation_concerns(3, random.Random(5), bad=[2]))
    out = mapped(path, "police-exploitation-concern.yaml")
    first, second = out[0], out[1]
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["details"]["indicators"] == ["OLDER_ASSOCIATES"]
    assert second["details"]["indicators"] == ["GOING_MISSING", "MULTIPLE_PHONES"]
    assert (
        first["details"]["nrm_referral_date"] == date(2026, 11, 1)
        and second["details"]["nrm_referral_date"] is None
    )
    assert first["details"]["associated_adults"][0]["relationship_to_child"] == "older associate"
    assert first["child"]["police_person_reference"] == "SYN-X000001"
    assert out[2] == "Column 'riskLevel' (risk) has a value the mapping's values table does not list."


def test_csv_missing_a_mapped_column_is_refused_as_a_file(tmp_path: Path) -> None:
    columns = [c for c in syn.DOMESTIC_ABUSE_COLUMNS if c != "ChildDOB"]
    rows = [
        {k: v for k, v in r.items() if k != "ChildDOB"} for r in syn.domestic_abuse_rows(2, random.Random(1))
    ]
    path = syn.write_csv(tmp_path / "x.csv", columns, rows)
    with pytest.raises(Exception, match="lacks the column\\(s\\) ChildDOB that the mapping file reads"):
        records(path, "police-domestic-abuse.yaml")


def test_csv_row_with_wrong_field_count_is_malformed(tmp_path: Path) -> None:
    path = syn.write_csv(
        tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, syn.domestic_abuse_rows(1, random.Random(1))
    )
    with path.open("a") as fh:
        fh.write("only,three,fields\n")
    read = records(path, "police-domestic-abuse.yaml")
    assert read[1].position == "row 3" and isinstance(read[1].data, Malformed)
    assert read[1].payload().startswith(b"IncidentRef,") and read[1].payload().endswith(
        b"only,three,fields\n"
    )


# -- bad mapping files -------------------------------------------------------------------------

GOOD = (MAPPINGS / "police-domestic-abuse.yaml").read_text()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            ("  narrative: {column: OfficerSummary}", "  narative: {column: OfficerSummary}"),
            "at event.narative: is not a field of SafeguardingEvent.",
        ),
        (("  risk:\n    column: RiskToChild", "  risks:\n    column: RiskToChild"), "at event.risk"),
        (
            ('High": SIGNIFICANT_HARM', 'High": VERY_HIGH'),
            "at event.risk.values: maps to something that is not one of",
        ),
        (
            (
                "child_present: {column: ChildPresent}",
                "child_present: {column: ChildPresent, values: {yes: true, no: false}}",
            ),
            "at event.details.child_present: 'values' has a key that YAML read as True rather than text",
        ),
        (("timezone: Europe/London", "timezone: Mars/Olympus"), "at timezone: is not a time zone name"),
        (
            ("family_name: {column: ChildSurname}", "family_name: {column: ChildSurname, format: '%d'}"),
            "at event.child.family_name: 'format' is only for dates and times.",
        ),
        (
            ("  source:\n", "  event_id: {column: IncidentRef}\n  source:\n"),
            "at event.event_id: is set by the connector",
        ),
        (
            ("event_type: DOMESTIC_ABUSE_INCIDENT", "event_type: ATTENDANCE_ALERT"),
            "at event_type: must be one of",
        ),
        (
            ('incident_at: {column: IncidentDateTime, format: "%d/%m/%Y %H:%M"}', "incident_at: {colum: X}"),
            "at event.details.incident_at: 'colum' is not one of column, const",
        ),
        (
            ('csv:\n  delimiter: ","', 'csv:\n  delimiter: ";;"'),
            "at csv.delimiter: must be exactly one character.",
        ),
    ],
)
def test_bad_mapping_file_names_file_and_field(
    tmp_path: Path, change: tuple[str, str], fragment: str
) -> None:
    old, new = change
    assert old in GOOD
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert message.startswith(f"Mapping file {path} ") and message.endswith(".")
    assert message.count(". ") == 0, message  # one sentence
    assert fragment in message, message


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("event_type: [unclosed\n")
    with pytest.raises(MappingFileError, match=r"is not valid YAML \(line 2\)"):
        load_mapping(path)
    with pytest.raises(MappingFileError, match="does not exist"):
        load_mapping(tmp_path / "nope.yaml")


def _with_when(tmp_path: Path, name: str, when: str) -> Path:
    """The domestic abuse mapping file with a ``when:`` row condition added."""
    text = (MAPPINGS / "police-domestic-abuse.yaml").read_text(encoding="utf-8")
    path = tmp_path / name
    path.write_text(f"when: {when}\n{text}", encoding="utf-8")
    return path


def test_a_when_condition_lets_one_export_feed_several_mappings(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(12, random.Random(9))
    export = syn.write_csv(tmp_path / "mixed.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows)
    high = load_mapping(_with_when(tmp_path, "high.yaml", "{column: DASHRisk, equals: high}"))
    rest = load_mapping(_with_when(tmp_path, "rest.yaml", "{column: DASHRisk, in: [Standard, ' Medium ']}"))
    chosen: dict[str, list[str]] = {}
    for label, mapping in (("high", high), ("rest", rest)):
        mapper = PoliceMapper(mapping)
        ref = FileRef(export, "police-test", export.name, export.name)
        for record in reader_for(mapping, "csv").records(ref):
            try:
                mapper(record)
            except NoEvent:
                continue
            chosen.setdefault(label, []).append(record.data["DASHRisk"])
    assert set(chosen["high"]) == {"High"} and set(chosen["rest"]) == {"Standard", "Medium"}
    assert len(chosen["high"]) + len(chosen["rest"]) == len(rows)  # every row, each by one mapping


def test_a_when_condition_needs_exactly_one_of_equals_or_in(tmp_path: Path) -> None:
    path = _with_when(tmp_path, "bad.yaml", "{column: DASHRisk, equals: High, in: [Medium]}")
    with pytest.raises(
        MappingFileError, match=r"is invalid at when: needs exactly one of 'equals' or 'in'\.$"
    ):
        load_mapping(path)


def test_a_bad_nhs_number_beside_a_valid_person_reference_is_withheld_not_the_row(tmp_path: Path) -> None:
    rows = syn.domestic_abuse_rows(1, random.Random(12))
    rows[0]["ChildNHSNumber"] = syn.bad_nhs_number(random.Random(13))
    path = syn.write_csv(tmp_path / "x.csv", syn.DOMESTIC_ABUSE_COLUMNS, rows)
    (event,) = mapped(path, "police-domestic-abuse.yaml")
    assert isinstance(event, dict)
    assert event["child"]["nhs_number"] is None
    assert event["child"]["police_person_reference"] == rows[0]["ChildPersonRef"]
    (finding,) = take_findings(event)
    assert finding.sentence() == "child.nhs_number withheld: NHS number check digit does not match."
