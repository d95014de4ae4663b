"""FHIR as NHS systems send it, without Kafka: XML, references in any order, Bulk Data
export folders, conditional references, batch Bundles, organisation from the mapping file,
NHS numbers as people write them."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.exceptions import MappingError, NoEvent, SourceFileError
from connectors.health import FhirMapper, FhirReader, load_profile
from connectors.health import synthetic as syn
from connectors.health.fhir_model import NHS_NUMBER_SYSTEM
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.sources import list_files

PROFILE = load_profile(
    Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"
)
AT = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)


def read(path: Path, reader: FhirReader | None = None) -> list[SourceRecord]:
    reader = reader or FhirReader(1000)
    return list(reader.records(FileRef(path, "health-test", path.name, path.name)))


def mapped(path: Path, reader: FhirReader | None = None) -> list[Any]:
    """Each record's outcome, mapped as it is read (as the pipeline does), not after the file."""
    reader = reader or FhirReader(1000)
    return [outcome(r) for r in reader.records(FileRef(path, "health-test", path.name, path.name))]


def outcome(record: SourceRecord) -> Any:
    if isinstance(record.data, Malformed):
        return "Malformed", record.data.reason
    try:
        return FhirMapper(PROFILE)(record)
    except (NoEvent, MappingError) as exc:
        return type(exc).__name__, str(exc)


def encounter_then_patient(rng: random.Random) -> list[dict[str, Any]]:
    return [syn.emergency_encounter(1, "pat-1", AT), syn.patient(1, rng, born="2016-03-15")]


def test_bundle_resolves_an_encounter_before_its_patient(tmp_path: Path) -> None:
    results = mapped(syn.write_bundle(tmp_path / "b.json", encounter_then_patient(random.Random(1))))
    assert results[0]["event_type"] == "EMERGENCY_ATTENDANCE"


def test_fhir_xml_bundle_is_read(tmp_path: Path) -> None:
    resources = encounter_then_patient(random.Random(2))
    path = syn.write_bundle_xml(tmp_path / "b.xml", resources)
    assert path in list_files(tmp_path, FhirReader.suffixes)
    event = mapped(path)[0]
    assert event["event_type"] == "EMERGENCY_ATTENDANCE"
    assert event["child"]["nhs_number"] == resources[1]["identifier"][0]["value"]
    assert event["details"]["site_ods_code"] == "RJ122" and event["child"]["given_name"] == "Testy"


def test_fhir_xml_with_a_dtd_or_entity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        '<Patient xmlns="http://hl7.org/fhir"><id value="&a;"/></Patient>'
    )
    with pytest.raises(SourceFileError, match="DTDs or entities"):
        read(path)


def test_bulk_export_folder_resolves_across_files_with_or_without_manifest(tmp_path: Path) -> None:
    rng = random.Random(3)
    patients = [syn.patient(i, rng) for i in range(3)]
    syn.write_ndjson(
        tmp_path / "Encounter.ndjson", [syn.emergency_encounter(i, f"pat-{i}", AT) for i in range(3)]
    )
    syn.write_ndjson(tmp_path / "Patient.ndjson", patients)
    manifest = {
        "transactionTime": "2026-11-21T00:00:00Z",
        "request": "https://example.invalid/$export",
        "requiresAccessToken": True,
        "output": [
            {"type": "Encounter", "url": "Encounter.ndjson"},
            {"type": "Patient", "url": "Patient.ndjson"},
        ],
        "error": [],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    reader = FhirReader(1000)
    results = {p.name: mapped(p, reader) for p in list_files(tmp_path, reader.suffixes)}
    assert [e["event_type"] for e in results["Encounter.ndjson"]] == ["EMERGENCY_ATTENDANCE"] * 3
    assert results["manifest.json"] == [
        ("NotUsed", "The file is a Bulk Data export manifest; the files of the export are read themselves.")
    ]


def test_conditional_and_identifier_references(tmp_path: Path) -> None:
    rng = random.Random(4)
    patient = syn.patient(1, rng)
    patient["identifier"].append({"system": "https://trust.example/mrn", "value": "MRN-1"})
    nhs = patient["identifier"][0]["value"]
    by_nhs = syn.emergency_encounter(1, "x", AT)
    by_nhs["subject"] = {"reference": f"Patient?identifier={NHS_NUMBER_SYSTEM}|{nhs}"}
    by_mrn = syn.emergency_encounter(2, "x", AT)
    by_mrn["subject"] = {"identifier": {"system": "https://trust.example/mrn", "value": "MRN-1"}}
    absolute = syn.emergency_encounter(3, "x", AT)
    absolute["subject"] = {"reference": "https://fhir.example.nhs.uk/R4/Patient/pat-1"}
    results = mapped(syn.write_bundle(tmp_path / "b.json", [by_nhs, by_mrn, absolute, patient]))
    assert [r["child"]["nhs_number"] for r in results[:3]] == [nhs] * 3


def test_batch_bundle_request_entries_are_not_used_not_dead_letters(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient/pat-{i}"}} for i in range(3)],
    }
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(bundle))
    assert [outcome(r)[0] for r in read(path)] == ["NotUsed"] * 3


def test_encounter_without_ods_code_uses_the_mapping_organisation(tmp_path: Path) -> None:
    rng = random.Random(5)
    encounter = syn.emergency_encounter(1, "pat-1", AT)
    encounter["serviceProvider"] = {"display": "Our ED"}
    records = read(syn.write_bundle(tmp_path / "b.json", [syn.patient(1, rng), encounter]))
    event = outcome(records[1])
    assert event["details"]["site_ods_code"] == "RAL" and event["source"]["organisation"] == "RAL"


def test_nhs_number_written_with_dashes_and_discharge_code_by_system(tmp_path: Path) -> None:
    nhs = syn.synthetic_nhs_number(random.Random(6))
    patient = syn.patient(1, random.Random(7), nhs_number=f"{nhs[:3]}-{nhs[3:6]}-{nhs[6:]}")
    encounter = syn.emergency_encounter(1, "pat-1", AT)
    encounter["hospitalization"] = {
        "dischargeDisposition": {
            "coding": [
                {"system": "https://example.invalid/local", "code": "X9"},
                {
                    "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-DischargeDestinationEngland",
                    "code": "19",
                },
            ]
        }
    }
    profile = PROFILE.model_copy(
        update={
            "discharge_codes": {
                "https://fhir.hl7.org.uk/CodeSystem/UKCore-DischargeDestinationEngland|19": "DISCHARGED_HOME"
            }
        }
    )
    records = read(syn.write_bundle(tmp_path / "b.json", [patient, encounter]))
    event = FhirMapper(profile)(records[1])
    assert event["child"]["nhs_number"] == nhs
    assert event["details"]["discharge_outcome"] == "DISCHARGED_HOME"
