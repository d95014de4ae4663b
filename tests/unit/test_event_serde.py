"""The event serde writes exactly the bytes fastavro writes for the whole record."""

from __future__ import annotations

import io

import fastavro

import schemas
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
