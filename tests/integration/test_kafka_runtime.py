"""The broker is real Apache Kafka: its own Java tools read what the project wrote; topics as code."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import sgb_env
from factories import domestic_abuse_incident

from broker.cluster.kafka_jars import classpath
from broker.cluster.topics import apply
from broker.settings import Settings
from connectors.runtime.publisher import EventPublisher
from schemas.topics import load_declaration


def test_java_console_consumer_reads_what_sgb_wrote(kafka: Settings) -> None:
    event = domestic_abuse_incident()
    publisher = EventPublisher(kafka, "POLICE")
    publisher.publish(event)
    publisher.flush()
    cmd = [
        "java",
        "-cp",
        classpath(kafka),
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        kafka.bootstrap,
        "--topic",
        kafka.topic("sg.ingress.police.v1"),
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "30000",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=|",
    ]
    result = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    key, _, value = result.stdout.partition(b"|")
    assert key == f"nhs:{event['child']['nhs_number']}".encode()
    assert value.startswith(b"\x00")  # Confluent framing, magic byte 0
    assert event["event_id"].encode() in value


def test_topics_apply_twice_changes_nothing_and_repairs_drift(kafka: Settings) -> None:
    declaration = load_declaration()
    again = apply(kafka, declaration)
    assert not again.changed and len(again.unchanged) == len(declaration.all_topics())
    # Drift: someone changed a retention by hand; apply puts it back and says so.
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    from broker.clients import admin_client

    name = kafka.topic("sg.dlq.v1")
    change = ConfigResource(
        ConfigResource.Type.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin = admin_client(kafka)
    for future in admin.incremental_alter_configs([change]).values():
        future.result()
    _await_config(admin, name, "retention.ms", "1000")
    repaired = apply(kafka, declaration)
    assert repaired.altered == [f"{name}: retention.ms 1000 -> 2592000000"]
    assert not apply(kafka, declaration).changed


def test_topics_apply_command_reports(kafka: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "topics", "apply"],
        env=sgb_env(kafka),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    declared = len(load_declaration().all_topics())
    assert result.stdout.strip().endswith(f"0 created, 0 changed, {declared} unchanged.")


def test_kafka_status_and_idempotent_start(kafka_session: Settings) -> None:
    env = dict(
        os.environ, SGB_STATE_DIR=str(kafka_session.state_dir), SGB_KAFKA_PORT=str(kafka_session.kafka_port)
    )
    status = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "kafka", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if os.environ.get("SGB_TEST_BOOTSTRAP"):
        return  # a broker we did not start has no state here to report on
    assert status.returncode == 0, status.stderr
    assert "is running" in status.stdout and "answering" in status.stdout
    start = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "kafka", "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert start.returncode == 0 and "already running" in start.stdout


def _await_config(admin: object, topic: str, key: str, value: str) -> None:
    """Wait until the broker reports a config change the controller has accepted."""
    import time

    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    for _ in range(100):
        configs = admin.describe_configs([resource])[resource].result()  # type: ignore[attr-defined]
        if configs[key].value == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"{key} never became {value}")
