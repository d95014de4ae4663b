"""A FHIR Encounter shared with the GP and then entered in error, on a real broker (issue 18):
the GP hub's store shows it withdrawn by source, and nobody else heard of either."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import RunningFilter
from test_corrections_e2e import stored
from test_corrections_kafka import every_delivery
from test_filter_kafka import audits_for, publish

from broker.hub.sinks import open_sink
from broker.hub.subscriber import Subscriber
from broker.settings import Settings
from connectors.health import FhirMapper, FhirReader
from connectors.health import synthetic as syn
from connectors.runtime.readers import FileRef

AT = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)


def fhir_event(tmp_path: Path, name: str, encounter: dict[str, Any]) -> dict[str, Any]:
    """What the FHIR connector publishes for ``encounter``, read from its own export file."""
    patient = syn.patient(1, random.Random(1818), born="2016-03-15")
    path = syn.write_ndjson(tmp_path / name, [patient, encounter])
    records = list(FhirReader(100).records(FileRef(path, "health-fhir", path.name, name.ljust(32, "0"))))
    return FhirMapper()(records[-1])


def test_an_encounter_entered_in_error_leaves_the_gp_showing_it_withdrawn(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    encounter = syn.emergency_encounter(1, "pat-1", AT)
    attendance = fhir_event(tmp_path, "export-1.ndjson", encounter)
    publish(kafka, attendance)
    shared = {(a["audience"], a["organisation"]) for a in audits_for(kafka, 1) if a["outcome"] == "SHARE"}
    assert shared == {("GP", "F83004")}  # no flag: the attendance goes to the child's GP only

    error = encounter | {"status": "entered-in-error", "meta": {"versionId": "2"}}
    retraction = fhir_event(tmp_path, "export-2.ndjson", error)  # another file, the same resource
    assert retraction["correction"] == {"kind": "RETRACTED", "corrects_event_id": attendance["event_id"]}
    publish(kafka, retraction, retraction)  # a re-send is decided once
    told = [a for a in audits_for(kafka, 2) if a["event_id"] == retraction["event_id"]]
    assert [(a["audience"], a["organisation"], a["correction"]) for a in told] == [
        ("GP", "F83004", "RETRACTED")
    ]

    path = tmp_path / "gp.db"
    Subscriber(kafka, "GP", "F83004").run(
        open_sink(f"sqlite:{path}", "GP", "F83004"), threading.Event(), idle_timeout=3
    )
    rows = stored(path)
    assert rows[attendance["event_id"]][0] == "RETRACTED" and retraction["event_id"] not in rows
    about = {attendance["event_id"], retraction["event_id"]}
    topics = {
        str(m.topic())
        for m in every_delivery(kafka)
        if dict(m.headers() or [])["sgb.event_id"].decode() in about
    }
    assert topics == {kafka.topic("sg.deliver.gp.F83004.v1")}


def test_an_encounter_first_read_at_a_later_version_reaches_the_gp_as_the_event_itself(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    later = syn.emergency_encounter(2, "pat-1", AT) | {"meta": {"versionId": "3"}}  # edited before export
    amended = fhir_event(tmp_path, "export-1.ndjson", later)
    original_id = amended["correction"]["corrects_event_id"]
    publish(kafka, amended, amended)  # and its re-send
    audits = audits_for(kafka, 1)
    assert {(a["event_id"], a["audience"], a["correction"]) for a in audits if a["outcome"] == "SHARE"} == {
        (original_id, "GP", None)
    }
    path = tmp_path / "gp.db"
    Subscriber(kafka, "GP", "F83004").run(
        open_sink(f"sqlite:{path}", "GP", "F83004"), threading.Event(), idle_timeout=3
    )
    rows = stored(path)
    assert list(rows) == [original_id] and rows[original_id][0] is None
    retraction = fhir_event(tmp_path, "export-2.ndjson", later | {"status": "entered-in-error"})
    publish(kafka, retraction)
    told = [a for a in audits_for(kafka, 2) if a["event_id"] == retraction["event_id"]]
    assert [(a["audience"], a["correction"]) for a in told] == [("GP", "RETRACTED")]
