"""`sgb schemas serve`: standard Kafka tools decode sgb's topics through the embedded registry's
read-only Confluent REST face, with no other server (confluent-kafka's own AvroDeserializer here)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher
from tests.conftest import RunningFilter, read_topic, sgb_env
from tests.factories import domestic_abuse_incident

MASH = "sg.deliver.mash.202.v1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.kafka
def test_confluent_avro_deserializer_decodes_a_delivery_topic(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    event = domestic_abuse_incident()
    publisher = EventPublisher(kafka, "POLICE")
    publisher.publish(event)
    publisher.flush()
    with RunningFilter(kafka, group_id=group_id, instance="test"):
        delivered = read_topic(kafka, MASH, expect=1)
    assert len(delivered) == 1
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", "schemas", "serve", "--port", str(port)],
        env=sgb_env(kafka),
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/subjects", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "sgb schemas serve never answered"
            time.sleep(0.3)

        deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
        topic = kafka.topic(MASH)
        decoded = deserializer(delivered[0].value(), SerializationContext(topic, MessageField.VALUE))
        ours = Codecs(registry_for(kafka, read_only=True)).event.decode(delivered[0].value())
        assert decoded == ours
        assert decoded["event_id"] == event["event_id"]

        # The subject the message's schema is registered under, and its versions, as Confluent says them.
        subjects = httpx.get(f"{url}/subjects", timeout=5).json()
        schema_id = int.from_bytes(delivered[0].value()[1:5], "big")
        versions = httpx.get(f"{url}/schemas/ids/{schema_id}/versions", timeout=5).json()
        assert versions and versions[0]["subject"] in subjects
        latest = httpx.get(f"{url}/subjects/{versions[0]['subject']}/versions/latest", timeout=5).json()
        assert latest["id"] == schema_id
        # Read-only: a registration is refused, and an unknown id is Confluent's 40403.
        refused = httpx.post(f"{url}/subjects/x/versions", json={"schema": '"string"'}, timeout=5)
        assert refused.status_code == 405
        missing = httpx.get(f"{url}/schemas/ids/1", timeout=5)
        assert missing.status_code == 404 and missing.json()["error_code"] == 40403
    finally:
        process.terminate()
        process.wait(30)
        log.close()
