"""The health connector's batch command on what a trust drops in a folder: FHIR XML is read
and published; files and records it does not use are counted and said; a run that read
nothing it could use exits non-zero with a sentence."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.health import synthetic as syn
from tests.integration.test_connector_files import read_all, run_connector

PROFILE = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"
AT = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)

pytestmark = pytest.mark.kafka


def test_fhir_xml_folder_is_published_and_what_is_not_read_is_said(kafka: Settings, tmp_path: Path) -> None:
    rng = random.Random(21)
    drop = tmp_path / "drop"
    drop.mkdir()
    # The Encounters come before their Patients in the Bundle.
    resources = [syn.emergency_encounter(i, f"pat-{i}", AT) for i in range(4)]
    resources += [syn.patient(i, rng) for i in range(4)]
    syn.write_bundle_xml(drop / "attendances.xml", resources)
    (drop / "notes.pdf").write_bytes(b"%PDF-1.4 not a feed")
    result = run_connector(kafka, "health", "--source", str(drop), "--mapping", str(PROFILE))
    assert result.returncode == 0, result.stderr
    assert "1 file(s): 8 read, 4 published, 0 dead-lettered" in result.stdout, result.stdout
    assert "1 file(s) not read (unsupported): notes.pdf." in result.stdout
    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.health.v1")]
    assert sorted(e["source"]["record_id"] for e in events) == [f"Encounter/enc-{i}" for i in range(4)]


def test_a_run_that_read_nothing_usable_exits_non_zero(kafka: Settings, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient/1"}}],
    }
    (drop / "batch.json").write_text(json.dumps(batch))
    (drop / "scan.tiff").write_bytes(b"II*\x00")
    result = run_connector(kafka, "health", "--source", str(drop), "--mapping", str(PROFILE))
    assert result.returncode == 1
    assert "(1 not used)" in result.stdout and "1 file(s) not read" in result.stdout, result.stdout
    assert result.stderr.strip().endswith(f"Nothing usable was read from {drop}.")
