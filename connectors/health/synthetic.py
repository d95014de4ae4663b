"""Synthetic health data in the formats' real shapes (FHIR R4 UK Core JSON, HL7 v2.4 ADT), for
tests, benchmarks and demonstrations. Invented people only; NHS numbers from the 999 test range.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from connectors.health.fhir_model import (
    ACT_CODE_SYSTEM,
    NHS_NUMBER_SYSTEM,
    ODS_ORGANISATION_SYSTEM,
    SNOMED_SYSTEM,
)
from schemas.identifiers import synthetic_nhs_number

CHILD_CONCERN = "836881000000105"  # Child is cause for safeguarding concern (finding)
SITES = (("RAL26", "Royal Free Hospital ED"), ("RJ122", "St Thomas' Hospital ED"))


def patient(
    index: int, rng: random.Random, *, born: str | None = None, nhs_number: str | None = None
) -> dict[str, Any]:
    """A UK Core Patient with an NHS number, an official name, a birth date, a home address and a GP."""
    return {
        "resourceType": "Patient",
        "id": f"pat-{index}",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number or synthetic_nhs_number(rng)}],
        "name": [{"use": "official", "family": "Synthetica", "given": ["Testy"]}],
        "birthDate": born or f"{2012 + index % 10}-0{1 + index % 9}-15",
        "address": [
            {
                "use": "home",
                "line": [f"{1 + index % 90} Synthetic Row"],
                "city": "Testford",
                "postalCode": "ZZ99 3WZ",
            }
        ],
        "generalPractitioner": [{"identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": "F83004"}}],
    }


def emergency_encounter(
    index: int, patient_id: str, at: datetime, *, status: str = "finished", klass: str = "EMER"
) -> dict[str, Any]:
    """An emergency Encounter of the patient, at a synthetic ED."""
    code, name = SITES[index % len(SITES)]
    return {
        "resourceType": "Encounter",
        "id": f"enc-{index}",
        "status": status,
        "class": {"system": ACT_CODE_SYSTEM, "code": klass, "display": "emergency"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": at.isoformat(), "end": (at + timedelta(hours=3)).isoformat()},
        "serviceProvider": {
            "identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": code},
            "display": name,
        },
        "reasonCode": [
            {"coding": [{"system": SNOMED_SYSTEM, "code": "125605004", "display": "Fracture of bone"}]}
        ],
    }


def concern_flag(index: int, patient_id: str, at: datetime) -> dict[str, Any]:
    """An active Flag coded 'child is cause for safeguarding concern'."""
    return {
        "resourceType": "Flag",
        "id": f"flag-{index}",
        "status": "active",
        "code": {
            "coding": [
                {
                    "system": SNOMED_SYSTEM,
                    "code": CHILD_CONCERN,
                    "display": "Child is cause for safeguarding concern",
                }
            ]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": at.isoformat()},
    }


def noshow_appointment(index: int, patient_id: str, at: datetime) -> dict[str, Any]:
    """An Appointment the child was not brought to."""
    return {
        "resourceType": "Appointment",
        "id": f"appt-{index}",
        "status": "noshow",
        "start": at.isoformat(),
        "specialty": [{"text": "community paediatrics"}],
        "participant": [
            {"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"},
            {"actor": {"identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": "RAL"}}},
        ],
    }


def fhir_resources(
    count: int, rng: random.Random, bad: Iterable[int] = (), *, first: int = 0
) -> list[dict[str, Any]]:
    """``count`` event-bearing resources, each after the Patient it refers to (so about 2x lines),
    numbered from ``first`` (a resource's logical id is its identity: two exports of one server
    holding different resources number them apart).

    Resources whose index is in ``bad`` refer to a Patient that is not in the stream.
    """
    bad_set = set(bad)
    out: list[dict[str, Any]] = []
    base = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    for i in range(first, first + count):
        at = base + timedelta(minutes=5 * i)
        pat = patient(i, rng)
        out.append(pat)
        ref = "missing-patient" if i in bad_set else pat["id"]
        kind = i % 3
        if kind == 0:
            out.append(emergency_encounter(i, ref, at))
        elif kind == 1:
            out.append(concern_flag(i, ref, at))
        else:
            out.append(noshow_appointment(i, ref, at))
    return out


def write_ndjson(path: Path, resources: Iterable[dict[str, Any]]) -> Path:
    """One resource per line, as a FHIR bulk export writes them."""
    with path.open("w", encoding="utf-8") as fh:
        for resource in resources:
            fh.write(json.dumps(resource, separators=(",", ":")) + "\n")
    return path


def write_bundle(path: Path, resources: list[dict[str, Any]]) -> Path:
    """A collection Bundle with one entry per resource."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}", "resource": r} for r in resources
        ],
    }
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def write_bundle_xml(path: Path, resources: list[dict[str, Any]]) -> Path:
    """The same collection Bundle as :func:`write_bundle`, in FHIR's XML format."""
    path.write_bytes(bundle_xml(resources))
    return path


def bundle_xml(resources: list[dict[str, Any]]) -> bytes:
    """A collection Bundle of the resources in FHIR's XML format."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}", "resource": r} for r in resources
        ],
    }
    data: bytes = ElementTree.tostring(_xml("Bundle", bundle), encoding="utf-8")
    return data


def _xml(tag: str, value: dict[str, Any]) -> ElementTree.Element:
    element = ElementTree.Element(tag, {"xmlns": "http://hl7.org/fhir"} if "resourceType" in value else {})
    for name, item in value.items():
        if name == "resourceType":
            continue
        if name == "url":
            element.set("url", str(item))
            continue
        for one in item if isinstance(item, list) else [item]:
            if isinstance(one, dict) and "resourceType" in one:
                holder = ElementTree.SubElement(element, name)
                holder.append(_xml(one["resourceType"], one))
            elif isinstance(one, dict):
                element.append(_xml(name, one))
            else:
                text = str(one).lower() if isinstance(one, bool) else str(one)
                ElementTree.SubElement(element, name, {"value": text})
    return element


def adt_message(
    index: int,
    rng: random.Random,
    *,
    trigger: str = "A04",
    patient_class: str = "E",
    born: str = "20150601",
    nhs_number: str | None = None,
    arrival: datetime | None = None,
    control_id: str | None = None,
    processing_id: str = "P",
    charset: str = "",
    family_name: str = "Synthetica",
    message_type: str = "ADT",
) -> str:
    """An HL7 v2.4 ADT message (segments separated by carriage returns) for an ED attendance.

    ``control_id`` defaults to ``MSG`` and the index; ``charset`` is written to MSH-18 (the
    caller encodes the text in it); an ``A40`` carries an MRG segment.
    """
    at = arrival or datetime(2026, 11, 20, 21, 30) + timedelta(minutes=index)
    stamp = at.strftime("%Y%m%d%H%M%S")
    nhs = nhs_number or synthetic_nhs_number(rng)
    site, name = SITES[index % len(SITES)]
    control = control_id or f"MSG{index:08d}"
    segments = [
        f"MSH|^~\\&|ED-SYSTEM|{site}|SGB|SGB|{stamp}||{message_type}^{trigger}^ADT_A01|{control}|"
        f"{processing_id}|2.4" + ("|" * 6 + charset if charset else ""),
        f"EVN|{trigger}|{stamp}",
        f"PID|1||{nhs}^^^NHS^NH~H{index:07d}^^^{site}^MR||{family_name}^Testy^^^^^L||{born}|F|||"
        f"{1 + index % 90} Synthetic Row^^Testford^^ZZ99 3WZ^GBR^H||||||||||||A",
        "PD1|||Synthetic Surgery^^F83004",
        f"PV1|1|{patient_class}|{site}ED^^^{site}^^^^^{name}||||||||||||||||V{index:08d}" + "|" * 25 + stamp,
        "PV2|||125605004^Fracture of bone^SCT",
    ]
    if trigger == "A40":
        segments.insert(4, f"MRG|H{index + 500000:07d}^^^{site}^MR")
    return "\r".join(segments)
