"""FHIR status changes and later versions as corrections, without Kafka (issue 18): the event id
is the resource's, a later version amends it, entered-in-error or cancelled retracts it."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.health import FhirMapper, FhirReader, load_profile
from connectors.health import synthetic as syn
from connectors.runtime.readers import FileRef

PROFILE = load_profile(
    Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"
)
AT = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)


def mapped(tmp_path: Path, name: str, *resources: dict[str, Any]) -> dict[str, Any]:
    """The event of the last resource of a file holding the patient and ``resources``."""
    path = syn.write_ndjson(
        tmp_path / name, [syn.patient(1, random.Random(1), born="2016-03-15"), *resources]
    )
    records = list(FhirReader(100).records(FileRef(path, "health-fhir", path.name, name.ljust(32, "f"))))
    return FhirMapper(PROFILE)(records[-1])


def encounter(version: str | None = None, **changes: Any) -> dict[str, Any]:
    enc = syn.emergency_encounter(1, "pat-1", AT) | changes
    return enc | {"meta": {"versionId": version}} if version else enc


def test_the_event_id_is_the_resources_whatever_file_or_position_it_came_in(tmp_path: Path) -> None:
    first = mapped(tmp_path, "a.ndjson", encounter())
    elsewhere = mapped(tmp_path, "b.ndjson", syn.emergency_encounter(2, "pat-1", AT), encounter())
    assert first["event_id"] == elsewhere["event_id"] and "correction" not in first
    other = mapped(tmp_path, "c.ndjson", syn.emergency_encounter(2, "pat-1", AT))
    assert other["event_id"] != first["event_id"]
    assert mapped(tmp_path, "d.ndjson", encounter("1"))["event_id"] == first["event_id"]


def test_a_later_version_amends_with_its_full_content_and_a_resend_is_the_same(tmp_path: Path) -> None:
    original = mapped(tmp_path, "a.ndjson", encounter())
    later = encounter("2", reasonCode=[{"text": "Head injury"}])
    amended = mapped(tmp_path, "b.ndjson", later)
    assert amended["correction"] == {"kind": "AMENDED", "corrects_event_id": original["event_id"]}
    assert amended["details"]["attendance_reason"] == "Head injury"
    assert amended["event_id"] not in (original["event_id"],)
    assert mapped(tmp_path, "c.ndjson", later)["event_id"] == amended["event_id"]
    third = mapped(tmp_path, "d.ndjson", encounter("3"))
    assert third["correction"]["corrects_event_id"] == original["event_id"]
    assert third["event_id"] != amended["event_id"]


def test_entered_in_error_or_a_cancelled_encounter_retracts_the_earlier_event(tmp_path: Path) -> None:
    original = mapped(tmp_path, "a.ndjson", encounter())
    for n, status in enumerate(("entered-in-error", "cancelled")):
        retraction = mapped(tmp_path, f"r{n}.ndjson", encounter("2", status=status))
        assert retraction["correction"] == {"kind": "RETRACTED", "corrects_event_id": original["event_id"]}
        assert retraction["event_id"] != original["event_id"]
    assert (
        mapped(tmp_path, "r2.ndjson", encounter("5", status="entered-in-error"))["event_id"]
        == retraction["event_id"]
    )  # one retraction of one event, whichever version says so


def test_a_concern_entered_in_error_is_retracted(tmp_path: Path) -> None:
    flag = syn.concern_flag(1, "pat-1", AT)
    original = mapped(tmp_path, "a.ndjson", flag)
    retraction = mapped(tmp_path, "b.ndjson", flag | {"status": "entered-in-error"})
    assert retraction["correction"] == {"kind": "RETRACTED", "corrects_event_id": original["event_id"]}


def test_a_resource_without_a_logical_id_is_known_by_its_business_identifier(tmp_path: Path) -> None:
    business = {"identifier": [{"system": "https://trust.example/encounters", "value": "ED-1"}]}
    anonymous = {k: v for k, v in encounter().items() if k != "id"} | business
    first = mapped(tmp_path, "a.ndjson", anonymous)
    assert (
        mapped(tmp_path, "b.ndjson", syn.emergency_encounter(3, "pat-1", AT), anonymous)["event_id"]
        == first["event_id"]
    )
    retraction = mapped(tmp_path, "c.ndjson", anonymous | {"status": "entered-in-error"})
    assert retraction["correction"]["corrects_event_id"] == first["event_id"]
