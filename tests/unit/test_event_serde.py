"""The event serde writes exactly the bytes fastavro writes for the whole record."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

import schemas
from broker.exceptions import SerdeError
from broker.wire.codecs import EventSerde
from broker.wire.registry import InMemoryRegistry
from schemas.jsonform import details_branch
from sgb.simulate.events import Population, Simulator


def test_pieces_concatenate_to_the_whole_record_for_every_event_type() -> None:
    serde = EventSerde(InMemoryRegistry())
    parsed = schemas.parsed("SafeguardingEvent")
    events = list(Simulator(Population(300, 3), 3).events(1500))
    assert {e["event_type"] for e in events} == set(schemas.load("EventType")["symbols"])
    for event in events:
        whole = io.BytesIO()
        hinted = {
            **event,
            "details": {**event["details"], "-type": "uk.sgb." + details_branch(event["event_type"])},
        }
        fastavro.schemaless_writer(whole, parsed, hinted)
        framed = serde.encode(event)
        assert framed[5:] == whole.getvalue(), event["event_type"]
        decoded = serde.decode(framed)
        assert decoded["details"] == event["details"] and decoded["child"] == event["child"]


def _whole(parsed: Any, event: dict[str, Any]) -> bytes | str:
    hinted = {**event}
    if isinstance(event.get("details"), dict):
        hinted["details"] = {
            **event["details"],
            "-type": "uk.sgb." + details_branch(str(event["event_type"])),
        }
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, parsed, hinted)
    except (ValueError, TypeError, KeyError, AttributeError):
        return "refused"
    return buf.getvalue()


def _framed(serde: EventSerde, event: dict[str, Any]) -> bytes | str:
    try:
        return serde.encode(event)[5:]
    except SerdeError:
        return "refused"


VARIANTS: list[tuple[str, Any]] = [
    # what connectors and the filter put in an event besides the simulator's
    ("narrative", "Sibling\u2019s school \u2014 \u2713 na\u00efve caf\u00e9"),
    ("withheld_fields", ["child.postcode", "narrative"]),
    ("generalised_fields", {"child.date_of_birth": "year"}),
    ("sealed_values", {"child.nhs_number": "sealed:v1:abc"}),
    ("correction", {"kind": "RETRACTED", "corrects_event_id": "e-1"}),
    ("merges", [{"identifiers": ["nhs:9990000018"], "merged_identifiers": ["la:202:X1"]}]),
    # and what a careless mapping might: the serde must refuse what fastavro refuses
    ("risk", True),
    ("occurred_at", "2026-01-01"),
    ("correction", {"kind": "LOST", "corrects_event_id": "e-1"}),
    ("related_people", ({"role": "x"},)),
    ("details", None),
    ("child", {"nhs_number": 9990000018}),
    ("sealed_values", {"child.nhs_number": 1}),
]


def test_awkward_and_wrong_events_are_written_or_refused_as_fastavro_does() -> None:
    serde = EventSerde(InMemoryRegistry())
    parsed = schemas.parsed("SafeguardingEvent")
    events = list(Simulator(Population(100, 5), 5).events(300))
    by_type = {e["event_type"]: e for e in events}
    refused = 0
    for event in by_type.values():
        for field, value in VARIANTS:
            variant = {**event, field: value}
            expected = _whole(parsed, variant)
            assert _framed(serde, variant) == expected, (event["event_type"], field)
            refused += expected == "refused"
    assert 0 < refused < len(by_type) * len(VARIANTS)  # both kinds were compared


def test_simulated_events_are_written_without_fastavro(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled writer, not fastavro, writes well-formed events (the connectors' and the
    filter's cost per event); fastavro is only the fallback for what it refuses."""
    serde = EventSerde(InMemoryRegistry())
    events = list(Simulator(Population(100, 7), 7).events(600))
    expected = [serde.encode(event) for event in events]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fastavro wrote an event")

    monkeypatch.setattr(fastavro, "schemaless_writer", refuse)
    assert [serde.encode(event) for event in events] == expected
