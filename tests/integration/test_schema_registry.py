"""Schema registration on the real broker: `sgb schemas register` and the embedded registry.

There is no Confluent schema registry in the test environment and none is faked here: the
Confluent-compatible client is only tested for its failure when nothing answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

import schemas
from broker.exceptions import SchemaRegistryError
from broker.settings import Settings
from broker.wire.registry import ConfluentRegistry, EmbeddedRegistry, content_id
from schemas.governance import TOP_LEVEL
from schemas.topics import SCHEMAS_TOPIC
from sgb.cli.schemas import register_all

pytestmark = pytest.mark.kafka

SUBJECTS = [f"uk.sgb.{name}" for name in TOP_LEVEL]


def sgb(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command against the test's broker and topic prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGB_")}
    env.update(
        {
            "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
            "SGB_TOPIC_PREFIX": settings.topic_prefix,
            "SGB_STATE_DIR": str(settings.state_dir),
            "SGB_LOG_FORMAT": "json",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "sgb.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _printed(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert result.returncode == 0, result.stderr
    pairs = [line.split(" -> ") for line in result.stdout.splitlines()]
    assert all(len(pair) == 2 for pair in pairs), result.stdout
    return {subject: int(schema_id) for subject, schema_id in pairs}


def _registrations(settings: Settings) -> list[dict[str, object]]:
    """Every record on the test's registrations topic."""
    topic = settings.topic(SCHEMAS_TOPIC)
    cons = Consumer({**settings.kafka_config(), "group.id": "test-reader", "enable.auto.commit": False})
    try:
        low, high = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        cons.assign([TopicPartition(topic, 0, low)])
        out: list[dict[str, object]] = []
        deadline = time.monotonic() + 20
        while len(out) < high - low and time.monotonic() < deadline:
            msg = cons.poll(1.0)
            if msg is None or msg.error():
                continue
            key, value = msg.key(), msg.value()
            assert key is not None and value is not None
            record = json.loads(value)
            assert key.decode() == f"{record['subject']}:{record['id']}"
            out.append(record)
        return out
    finally:
        cons.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_register_prints_every_subject_and_is_idempotent(kafka: Settings) -> None:
    first = _printed(sgb(kafka, "schemas", "register"))
    assert list(first) == SUBJECTS
    for name in TOP_LEVEL:
        assert first[f"uk.sgb.{name}"] == content_id(schemas.load(name))
    second = _printed(sgb(kafka, "schemas", "register"))
    assert second == first
    records = _registrations(kafka)
    assert {(r["subject"], r["id"]) for r in records} == set(first.items())
    for record in records:
        name = str(record["subject"]).rsplit(".", 1)[-1]
        assert record["schema"] == schemas.load(name)


def test_register_all_returns_the_same_ids_as_the_command(kafka: Settings) -> None:
    first = register_all(kafka)
    assert [subject for subject, _ in first] == SUBJECTS
    assert register_all(kafka) == first


def test_a_second_registry_resolves_ids_written_by_the_first(kafka: Settings) -> None:
    ids = dict(register_all(kafka))
    fresh = EmbeddedRegistry(kafka)  # as a new process would: nothing cached, must read sg.schemas.v1
    for subject, schema_id in ids.items():
        assert fresh.schema(schema_id) == schemas.load(subject.rsplit(".", 1)[-1])


def test_a_registry_in_another_process_resolves_an_id(kafka: Settings) -> None:
    schema_id = EmbeddedRegistry(kafka).register("uk.sgb.DeadLetter", schemas.load("DeadLetter"))
    code = (
        "import json, sys\n"
        "from broker.wire.registry import EmbeddedRegistry\n"
        "from broker.settings import Settings\n"
        "settings = Settings(bootstrap_servers=sys.argv[1], topic_prefix=sys.argv[2])\n"
        "print(json.dumps(EmbeddedRegistry(settings).schema(int(sys.argv[3]))))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGB_")}
    result = subprocess.run(
        [sys.executable, "-c", code, kafka.bootstrap, kafka.topic_prefix, str(schema_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == schemas.load("DeadLetter")


def test_an_unknown_id_raises(kafka: Settings) -> None:
    register_all(kafka)
    known = {content_id(schemas.load(name)) for name in TOP_LEVEL}
    unknown = next(i for i in range(1, 100) if i not in known)
    expected = rf"Schema id {unknown} is not registered in .*sg\.schemas\.v1\."
    with pytest.raises(SchemaRegistryError, match=expected):
        EmbeddedRegistry(kafka).schema(unknown)


def _wait_until_readable(settings: Settings, topic: str, timeout: float = 20.0) -> None:
    """A topic that was just created may not have its partition leader ready yet."""
    cons = Consumer({**settings.kafka_config(), "group.id": "test-wait"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        cons.close()


def test_an_unknown_id_on_an_empty_topic_raises(kafka: Settings) -> None:
    _wait_until_readable(kafka, kafka.topic(SCHEMAS_TOPIC))
    with pytest.raises(SchemaRegistryError, match="Schema id 12345 is not registered"):
        EmbeddedRegistry(kafka).schema(12345)


def test_register_without_the_registrations_topic_is_one_sentence(kafka: Settings) -> None:
    missing = kafka.model_copy(update={"topic_prefix": kafka.topic_prefix + "none."})
    result = sgb(missing, "schemas", "register")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"sgb: The schema registrations topic {missing.topic(SCHEMAS_TOPIC)} "
        "does not exist; run `sgb topics apply`."
    )


def test_confluent_registry_that_does_not_answer_is_one_sentence(kafka: Settings) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    try:
        registry = ConfluentRegistry(url)
    except ImportError as exc:
        pytest.fail(
            f"ConfluentRegistry cannot even be constructed ({exc}): confluent_kafka.schema_registry "
            "needs confluent-kafka's schemaregistry extra, which the project does not depend on.",
            pytrace=False,
        )
    with pytest.raises(SchemaRegistryError) as raised:
        registry.register("uk.sgb.AuditDecision", schemas.load("AuditDecision"))
    message = str(raised.value)
    assert message.startswith("The schema registry could not be reached to register uk.sgb.AuditDecision")
    assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message
    with pytest.raises(SchemaRegistryError) as raised:
        registry.schema(1)
    assert str(raised.value).startswith("Schema id 1 could not be fetched from the schema registry")
    assert "\n" not in str(raised.value)


def test_register_command_with_a_registry_url_that_does_not_answer(kafka: Settings) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = sgb(kafka, "schemas", "register", "--registry-url", url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sgb: The schema registry could not be reached"), result.stderr
    assert lines[0].endswith(".")


def test_register_command_rejects_a_registry_url_that_is_not_http(tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:1", state_dir=tmp_path)
    result = sgb(settings, "schemas", "register", "--registry-url", "ftp://registry")
    assert result.returncode == 1
    assert result.stderr.strip() == "sgb: Registry URL 'ftp://registry' must start with http:// or https://."
