"""Avro in the Confluent framing, with the embedded registry kept in Kafka."""

from __future__ import annotations

import struct

import pytest
from factories import domestic_abuse_incident

import schemas
from broker.exceptions import SerdeError
from broker.settings import Settings
from broker.wire.codecs import Codecs, EventSerde
from broker.wire.registry import EmbeddedRegistry, content_id


def test_event_round_trip_with_confluent_framing(kafka: Settings) -> None:
    serde = EventSerde(EmbeddedRegistry(kafka))
    event = domestic_abuse_incident()
    data = serde.encode(event)
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == content_id(schemas.load("SafeguardingEvent")) == serde.schema_id
    decoded = serde.decode(data)
    assert decoded["event_id"] == event["event_id"]
    assert decoded["child"] == event["child"]
    assert decoded["details"] == event["details"]
    assert decoded["occurred_at"] == event["occurred_at"]


def test_a_fresh_process_resolves_ids_from_kafka(kafka: Settings) -> None:
    writer = Codecs(EmbeddedRegistry(kafka))
    data = writer.audit.encode(
        {
            "event_id": "e1",
            "event_type": "DOMESTIC_ABUSE_INCIDENT",
            "policy_version": "1.0.0+abc",
            "decided_at": domestic_abuse_incident()["occurred_at"],
            "decisions": [
                {
                    "audience": "MASH",
                    "organisation": "202",
                    "outcome": "SHARE",
                    "reason": None,
                    "rule": "F1-mash",
                    "lawful_basis": "PUBLIC_TASK_SAFEGUARDING",
                    "consent_state": "NO_RECORD",
                    "removed_fields": [],
                    "transformed_fields": [],
                    "delivery_topic": None,
                }
            ],
            "chain": "sg.ingress.police.v1:0",
            "sequence": 0,
            "previous_hash": "0" * 64,
            "record_hash": "0" * 64,
        }
    )
    fresh = EmbeddedRegistry(kafka)  # knows nothing yet: must read sg.schemas.v1
    schema = fresh.schema(struct.unpack(">I", data[1:5])[0])
    assert schema["name"] == "AuditRecord"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "too short"),
        (b"\x01\x00\x00\x00\x01abc", "magic byte"),
        (b"\x00\x7f\xff\xff\xfeabc", "cannot be resolved"),
    ],
)
def test_bad_bytes_are_rejected_with_a_reason(kafka: Settings, data: bytes, fragment: str) -> None:
    serde = EventSerde(EmbeddedRegistry(kafka))
    with pytest.raises(SerdeError, match=fragment):
        serde.decode(data)


def test_truncated_event_is_rejected(kafka: Settings) -> None:
    serde = EventSerde(EmbeddedRegistry(kafka))
    data = serde.encode(domestic_abuse_incident())
    with pytest.raises(SerdeError, match="not valid Avro"):
        serde.decode(data[: len(data) // 2])


def test_encoding_error_names_the_field_not_the_value(kafka: Settings) -> None:
    serde = EventSerde(EmbeddedRegistry(kafka))
    event = domestic_abuse_incident()
    event["child"] = {**event["child"], "date_of_birth": "SECRET-VALUE"}
    with pytest.raises(SerdeError) as caught:
        serde.encode(event)
    assert "SECRET-VALUE" not in str(caught.value)
