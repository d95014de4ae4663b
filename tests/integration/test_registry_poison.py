"""A poisoned ``sg.schemas.v1`` cannot crash or mislead a reader (issue 20, item 2).

Before: one non-JSON record on the registrations topic, then one event with an unknown
schema id, made the embedded registry's re-read raise ``json.loads``' error through the
filter, which exited with a traceback on every restart; a well-formed registration of
another schema under a real id made readers decode with the wrong schema.
"""

from __future__ import annotations

import json
import struct
import time

from conftest import RunningFilter, read_topic
from factories import event
from test_filter_kafka import publish

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import EmbeddedRegistry, content_id, registry_for
from schemas.topics import SCHEMAS_TOPIC


def _poison(settings: Settings, *values: bytes) -> None:
    prod = producer(settings)
    for value in values:
        prod.produce(settings.topic(SCHEMAS_TOPIC), key=b"poison", value=value)
    assert prod.flush(10) == 0


def test_unparsable_and_lying_registrations_are_skipped_not_fatal(kafka: Settings) -> None:
    audit_schema = Codecs(registry_for(kafka)).audit.schema_id  # registers the real schemas
    impostor = {"type": "record", "name": "Impostor", "fields": [{"name": "x", "type": "string"}]}
    _poison(
        kafka,
        b"\xff not json at all",
        json.dumps([1, 2, 3]).encode(),
        # A real schema's id claimed for another schema: the id is not the impostor's content.
        json.dumps({"subject": "uk.sgb.AuditRecord", "id": audit_schema, "schema": impostor}).encode(),
    )
    fresh = EmbeddedRegistry(kafka, read_only=True)
    with_real = fresh.schema(audit_schema)  # re-reads the topic: must neither raise nor believe the impostor
    assert with_real.get("name") == "AuditRecord"
    assert fresh.skipped == 3
    assert content_id(impostor) != audit_schema


def test_an_event_with_an_unknown_schema_id_is_dead_lettered_and_the_filter_keeps_running(
    kafka: Settings, group_id: str
) -> None:
    _poison(kafka, b"{{{ not json")
    good = event("DOMESTIC_ABUSE_INCIDENT")
    unknown = struct.pack(">bI", 0, 123_456_789) + b"\x00" * 16  # framed, but no such schema id
    with RunningFilter(kafka, group_id=group_id, instance="poison") as running:
        prod = producer(kafka)
        prod.produce(kafka.topic("sg.ingress.police.v1"), key=b"nhs:9990000018", value=unknown)
        assert prod.flush(10) == 0
        publish(kafka, good)
        dead = read_topic(kafka, "sg.dlq.v1", expect=1, timeout=60)
        audits = read_topic(kafka, "sg.audit.decisions.v1", expect=1, timeout=60)
        time.sleep(0.5)
        assert running.error is None and running.thread.is_alive()
    assert len(dead) == 1 and audits, "the bad event is a dead letter; the good one is decided"
    headers = dict(dead[0].headers() or [])
    assert b"schema id 123456789" in headers.get("sgb.reason", b"")
