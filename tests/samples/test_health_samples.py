"""The health connector on NHS England's UK Core examples (FHIR XML), read where they are
(``../shared/samples/fhir-ukcore-xml/``, never copied here): every file is read, and every
resource in it is exactly one of an event, a dead letter with a reason, or not published
with a reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring

from connectors.exceptions import MappingError, NoEvent
from connectors.health import FhirMapper, FhirReader, load_profile
from connectors.health.fhir_model import Encounter, Patient
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.sources import list_files

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / ".." / "shared" / "samples" / "fhir-ukcore-xml"
FHIR = "{http://hl7.org/fhir}"
PROFILE = load_profile(ROOT / "connectors" / "mappings" / "health-example.yaml")


def records(path: Path) -> list[SourceRecord]:
    return list(FhirReader().records(FileRef(path, "health-samples", path.name, path.name)))


def outcome(record: SourceRecord) -> str:
    if isinstance(record.data, Malformed):
        return "dead_lettered"
    try:
        FhirMapper(PROFILE)(record)
    except NoEvent as exc:
        return exc.kind
    except MappingError:
        return "dead_lettered"
    return "published"


def test_every_uk_core_example_is_read_and_accounted_for() -> None:
    files = list_files(SAMPLES, FhirReader.suffixes)
    assert len(files) >= 20, "the UK Core XML examples are expected in ../shared/samples"
    outcomes: Counter[str] = Counter()
    for path in files:
        found = records(path)
        root = fromstring(path.read_bytes())
        expected = len(root.findall(f"{FHIR}entry")) if root.tag == f"{FHIR}Bundle" else 1
        assert len(found) == expected, f"{path.name}: every entry is a record"
        for record in found:
            outcomes[outcome(record)] += 1
    assert set(outcomes) <= {"published", "dead_lettered", "no_event", "not_used"}
    # Resource types the connector does not read are said so, not dead-lettered as errors.
    assert outcomes["not_used"] >= 5
    assert outcomes["dead_lettered"] < outcomes["no_event"] + outcomes["not_used"]


def test_uk_core_patient_and_encounter_xml_parse_to_the_elements_the_mapping_reads() -> None:
    (baby,) = records(SAMPLES / "ukcore__UKCore-Patient-BabyPatient-Example.xml")
    assert isinstance(baby.data, Patient)
    assert baby.data.nhs_number() is not None and baby.data.birthDate == "2021-02-11"
    assert baby.data.name[0].given == ["Melanie"] and baby.data.address[0].postalCode
    (encounter,) = records(SAMPLES / "ukcore__UKCore-Encounter-InpatientEncounter-Example.xml")
    assert isinstance(encounter.data, Encounter) and encounter.data.class_.code == "IMP"
    assert encounter.data.subject is not None
    with pytest.raises(NoEvent, match="not an emergency encounter"):
        FhirMapper(PROFILE)(encounter)


def test_uk_core_batch_bundles_are_not_used_entry_by_entry_not_dead_letters() -> None:
    for name in ("ukcore__UKCore-Bundle-Batch-Example.xml",):
        found = [outcome(r) for r in records(SAMPLES / name)]
        assert found and set(found) == {"not_used"}
