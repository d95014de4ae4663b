"""Health mapping without Kafka: FHIR R4 resources and HL7 v2 ADT messages to events."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.exceptions import MappingError, MappingFileError, NoEvent
from connectors.health import FhirMapper, FhirReader, Hl7FileReader, Hl7Mapper, Hl7Message, load_profile
from connectors.health import synthetic as syn
from connectors.health.fhir_reader import FhirContext
from connectors.health.hl7v2 import hl7_time
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from schemas.child_keys import child_identifiers, child_key

PROFILE = load_profile(
    Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"
)
AT = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)


def fhir_records(
    tmp_path: Path, resources: list[dict[str, Any]], *, bundle: bool = False, limit: int = 1000
) -> list[SourceRecord]:
    path = (
        syn.write_bundle(tmp_path / "b.json", resources)
        if bundle
        else syn.write_ndjson(tmp_path / "r.ndjson", resources)
    )
    return list(FhirReader(limit).records(FileRef(path, "health-test", path.name, "f" * 32)))


def outcome(mapper: Any, record: SourceRecord) -> Any:
    try:
        return mapper(record)
    except (NoEvent, MappingError) as exc:
        return type(exc).__name__, str(exc)


# -- FHIR ----------------------------------------------------------------------------------


def test_emergency_encounter_becomes_an_attendance(tmp_path: Path) -> None:
    rng = random.Random(1)
    patient = syn.patient(1, rng, born="2016-03-15")
    records = fhir_records(tmp_path, [patient, syn.emergency_encounter(1, "pat-1", AT)])
    mapper = FhirMapper(PROFILE)
    assert outcome(mapper, records[0]) == ("NoEvent", "A Patient is read for context, not published.")
    event = mapper(records[1])
    assert event["event_type"] == "EMERGENCY_ATTENDANCE" and event["risk"] == "INFORMATION"
    assert event["occurred_at"] == AT and event["details"]["arrival_at"] == AT
    assert (
        event["details"]["site_ods_code"] == "RJ122"
        and event["details"]["attendance_reason_code"] == "125605004"
    )
    assert event["child"]["nhs_number"] == patient["identifier"][0]["value"]
    assert (
        event["child"]["date_of_birth"] == date(2016, 3, 15) and event["child"]["gp_practice_ods"] == "F83004"
    )
    assert event["source"]["organisation"] == "RAL" and event["source"]["record_id"] == "Encounter/enc-1"
    assert event["source"]["contact"]["reference"] == "Encounter/enc-1"


def test_flag_and_noshow_and_what_is_not_published(tmp_path: Path) -> None:
    rng = random.Random(2)
    resources = [
        syn.patient(1, rng),
        syn.concern_flag(1, "pat-1", AT),
        syn.noshow_appointment(1, "pat-1", AT),
        syn.emergency_encounter(2, "pat-1", AT, klass="AMB"),
        {**syn.noshow_appointment(3, "pat-1", AT), "status": "booked"},
        syn.patient(4, rng, born="1990-01-01"),
        syn.emergency_encounter(4, "pat-4", AT),
        syn.emergency_encounter(5, "pat-99", AT),
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": {"reference": "Patient/pat-1"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1064961000000107"}]},
            "effectiveDateTime": "2026-11-19",
            "valueString": "synthetic finding",
        },
        {"resourceType": "MedicationRequest", "id": "m1"},
    ]
    results = [outcome(FhirMapper(PROFILE), r) for r in fhir_records(tmp_path, resources, bundle=True)]
    assert results[1]["event_type"] == "HEALTH_SAFEGUARDING_CONCERN" and results[1]["risk"] == "NEEDS_SUPPORT"
    assert results[2]["event_type"] == "WAS_NOT_BROUGHT"
    assert results[2]["details"]["missed_appointments"][0]["specialty"] == "community paediatrics"
    assert results[3] == ("NoEvent", "The Encounter is not an emergency encounter (class EMER).")
    assert results[4] == ("NoEvent", "The Appointment's status is not noshow.")
    assert results[6] == ("NoEvent", "The Patient is 18 or over.")
    assert results[7] == (
        "MappingError",
        "Encounter.subject refers to a Patient that is not in the file or its folder "
        "(or not among the patients_in_memory most recently used).",
    )
    concern = results[8]
    assert concern["details"]["concern_categories"] == ["DOMESTIC_ABUSE"]
    assert concern["details"]["clinical_findings"] == "synthetic finding"
    assert concern["occurred_at"] == datetime(2026, 11, 19, tzinfo=concern["occurred_at"].tzinfo)
    assert results[9] == ("NotUsed", "A MedicationRequest is a resource type this connector does not read.")


def test_patient_map_is_bounded(tmp_path: Path) -> None:
    rng = random.Random(3)
    resources = [syn.patient(i, rng) for i in range(5)] + [
        syn.emergency_encounter(0, "pat-0", AT),
        syn.emergency_encounter(4, "pat-4", AT),
    ]
    records = fhir_records(tmp_path, resources, limit=1)  # each patient is kept under up to 3 keys
    mapper = FhirMapper(PROFILE)
    assert outcome(mapper, records[5])[0] == "MappingError"  # evicted
    assert outcome(mapper, records[6])["event_type"] == "EMERGENCY_ATTENDANCE"


def test_fhir_shape_errors_name_the_element_not_the_value(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text(
        '{"resourceType":"Encounter","status":"finished","class":[1]}\n[1,2]\n\n'
        '{"resourceType":"Patient","birthDate":"2020-01-01","id":"p"}\n'
    )
    records = list(FhirReader().records(FileRef(path, "t", "x.ndjson", "f")))
    assert [r.position for r in records] == ["line 1", "line 2", "line 4"]
    assert isinstance(records[0].data, Malformed) and "FHIR R4 at class" in records[0].data.reason
    assert records[1].data == Malformed("The line is not valid JSON.") or isinstance(
        records[1].data, Malformed
    )
    assert records[0].payload() == b'{"resourceType":"Encounter","status":"finished","class":[1]}'
    assert isinstance(records[2].context, FhirContext)


def test_encounter_without_arrival_or_birth_date(tmp_path: Path) -> None:
    rng = random.Random(4)
    no_birth = {**syn.patient(1, rng), "birthDate": None}
    encounter = syn.emergency_encounter(1, "pat-1", AT)
    no_start = {**encounter, "id": "e2", "period": {}}
    results = [
        outcome(FhirMapper(PROFILE), r) for r in fhir_records(tmp_path, [no_birth, encounter, no_start])
    ]
    assert results[1] == (
        "MappingError",
        "The Patient has no birthDate, so whether they are a child is unknown.",
    )
    assert results[2] == ("MappingError", "Encounter.period.start (the arrival) is missing.")


def test_health_mapping_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text("risk: {EMERGENCY_ATTENDANCE: DIRE}\n")
    with pytest.raises(
        MappingFileError, match=r"^Mapping file .*h\.yaml is invalid at risk\.EMERGENCY_ATTENDANCE: "
    ):
        load_profile(path)
    path.write_text("organisaton: RAL\n")
    with pytest.raises(
        MappingFileError, match="invalid at organisaton: is not a setting a health mapping file has"
    ):
        load_profile(path)


# -- HL7 v2 --------------------------------------------------------------------------------


def hl7_record(text: str, position: str = "message 1") -> SourceRecord:
    return SourceRecord("health-test", "mllp://x", "mllp:x", 0, position, Hl7Message(text), text.encode())


def test_adt_a04_becomes_an_attendance() -> None:
    rng = random.Random(5)
    text = syn.adt_message(7, rng)
    event = Hl7Mapper(PROFILE)(hl7_record(text))
    assert event["event_type"] == "EMERGENCY_ATTENDANCE"
    assert event["details"]["arrival_at"] == datetime(
        2026, 11, 20, 21, 37, tzinfo=event["occurred_at"].tzinfo
    )
    assert (
        event["details"]["site_ods_code"] == "RJ122"
        and event["details"]["site_name"] == "St Thomas' Hospital ED"
    )
    assert event["details"]["attendance_reason"] == "Fracture of bone"
    assert event["child"]["nhs_number"] == text.split("PID|1||")[1][:10]
    assert event["child"]["family_name"] == "Synthetica" and event["child"]["gp_practice_ods"] == "F83004"
    assert event["source"]["record_id"] == "MSG00000007"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"trigger": "A01"}, "ADMITTED"),
        ({"patient_class": "I"}, ("NoEvent", "The visit is not an emergency one (PV1-2 is not E).")),
        ({"born": "19900101"}, ("NoEvent", "The patient is 18 or over.")),
        (
            {"born": ""},
            (
                "MappingError",
                "PID-7 (date of birth) is missing, so whether the patient is a child is unknown.",
            ),
        ),
        ({"trigger": "A40", "born": "19900101"}, ("NoEvent", "The patient is 18 or over.")),
        (
            {"trigger": "A05"},
            ("NotUsed", "The message type is not one of the ADT lifecycle this connector uses."),
        ),
    ],
)
def test_adt_variants(kwargs: dict[str, str], expected: Any) -> None:
    result = outcome(Hl7Mapper(PROFILE), hl7_record(syn.adt_message(1, random.Random(6), **kwargs)))
    if isinstance(expected, str):
        assert result["details"]["discharge_outcome"] == expected
    else:
        assert result == expected


def test_hl7_fields_escapes_and_acks() -> None:
    message = Hl7Message(
        "MSH|^~\\&|APP|FAC|SGB|SGB|20261120||ADT^A04|C1|P|2.4\r"
        "PID|1||X^^^A^MR~9990001234^^^NHS^NH||O\\S\\Brien\\T\\Co^Ann\\F\\e"
    )
    assert message.get("PID", 3, 1, repetition=2) == "9990001234" and message.repetitions("PID", 3) == 2
    assert message.get("PID", 5, 1) == "O^Brien&Co" and message.get("PID", 5, 2) == "Ann|e"
    assert (
        message.get("PID", 9) is None and message.get("ZZZ", 1) is None and message.get("MSH", 9, 2) == "A04"
    )
    ack = message.ack("AR", "Bad | value^here.").decode().split("\r")
    assert ack[0].startswith("MSH|^~\\&|SGB|SGB|APP|FAC|") and "|ACK^A04^ACK|" in ack[0]
    assert ack[1] == "MSA|AR|C1|Bad   value here." and ack[2] == "ERR||||E||||Bad   value here."
    with pytest.raises(ValueError, match="does not start with an MSH segment"):
        Hl7Message("PID|1")


def test_hl7_times() -> None:
    zone = PROFILE.timezone
    from zoneinfo import ZoneInfo

    london = ZoneInfo(zone)
    assert hl7_time("20260701123000", "X", london) == datetime(2026, 7, 1, 12, 30, tzinfo=london)
    assert hl7_time("202607011230+0100", "X", london).astimezone(UTC) == datetime(
        2026, 7, 1, 11, 30, tzinfo=UTC
    )
    with pytest.raises(MappingError, match=r"^PV1-44 is not an HL7 date/time\.$"):
        hl7_time("yesterday", "PV1-44", london)


def test_hl7_file_reader_splits_batches(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "batch.hl7"
    path.write_text(
        "FHS|^~\\&\nBHS|^~\\&\n"
        + "\n".join(syn.adt_message(i, rng) for i in range(3)).replace("\r", "\n")
        + "\nBTS|3\nFTS|1\n"
    )
    records = list(Hl7FileReader().records(FileRef(path, "t", "batch.hl7", "f")))
    assert [r.position for r in records] == ["message 1", "message 2", "message 3"]
    assert all(Hl7Mapper(PROFILE)(r)["event_type"] == "EMERGENCY_ATTENDANCE" for r in records)


def test_hospital_ids_key_a_patient_without_an_nhs_number_and_are_cross_references_otherwise(
    tmp_path: Path,
) -> None:
    """Issue 14/17: PID-3's and a FHIR Patient's own ids (MRN) are the hospital's cross-reference."""
    text = syn.adt_message(3, random.Random(7))
    nhs = text.split("PID|1||")[1][:10]
    child = Hl7Mapper(PROFILE)(hl7_record(text))["child"]
    assert (child["nhs_number"], child["local_patient_id"], child["local_patient_id_issuer"]) == (
        nhs,
        "H0000003",
        "RJ122",
    )
    no_nhs = text.replace(f"{nhs}^^^NHS^NH~", "").replace("^MR|", "^MR~Q77^^^RJ1^PI|", 1)
    child = Hl7Mapper(PROFILE)(hl7_record(no_nhs))["child"]
    assert child["nhs_number"] is None and child_key(child) == "lpi:RJ122:H0000003"
    assert child["linked_identifiers"] == ["lpi:RJ1:Q77"]

    patient = syn.patient(1, random.Random(1), born="2016-03-15")
    patient["identifier"].append(
        {
            "type": {"coding": [{"code": "MR"}]},
            "value": "MRN-55",
            "assigner": {"identifier": {"value": "RJ1"}},
        }
    )
    records = fhir_records(tmp_path, [patient, syn.emergency_encounter(1, "pat-1", AT)])
    mapper = FhirMapper(PROFILE)
    outcome(mapper, records[0])
    child = mapper(records[1])["child"]
    assert child_identifiers(child) == (f"nhs:{patient['identifier'][0]['value']}", "lpi:RJ1:MRN-55")
