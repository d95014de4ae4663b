"""The MLLP listener on the real broker: AA only once Kafka has the event; AR (and a dead
letter) for what cannot be mapped; AE, never AA, while Kafka is unreachable."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from hl7.mllp import open_hl7_connection

from broker.clients import consumer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.health import Hl7Mapper, load_profile
from connectors.health import synthetic as syn
from connectors.health.mllp import MllpListener

PROFILE = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"
SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"

pytestmark = pytest.mark.kafka


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ack_code(ack: bytes) -> str:
    return ack.split(b"\rMSA|", 1)[1][:2].decode()


async def exchange(port: int, messages: list[bytes], *, retry_ae: bool, timeout: float = 20.0) -> list[bytes]:
    """Send each message and wait for its ACK; resend on AE when asked, as an integration engine does."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    acks = []
    try:
        for message in messages:
            deadline = time.monotonic() + timeout
            while True:
                writer.writeblock(message)
                await writer.drain()
                ack = await asyncio.wait_for(reader.readblock(), timeout)
                if not (retry_ae and ack_code(ack) == "AE" and time.monotonic() < deadline):
                    break
                await asyncio.sleep(0.5)
            acks.append(ack)
    finally:
        writer.close()
    return acks


def read_all(settings: Settings, logical: str) -> list[Any]:
    """Every committed message of a topic, read to its end."""
    topic = settings.topic(logical)
    cons = consumer(settings, f"check-{uuid.uuid4().hex[:8]}")
    try:
        parts = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for p in cons.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        ends = {}
        for tp in parts:
            for _ in range(40):
                try:
                    ends[tp.partition] = cons.get_watermark_offsets(tp, timeout=10)[1]
                    break
                except KafkaException:
                    time.sleep(0.25)
        cons.assign(parts)
        out: list[Any] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out += [m for m in cons.consume(1000, timeout=0.5) if not m.error()]
            positions = cons.position([TopicPartition(topic, p) for p in ends])
            if all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in positions):
                return out
        raise AssertionError(f"{topic} was not read to its end")
    finally:
        cons.close()


def start_listener(settings: Settings, port: int, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        {
            "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
            "SGB_TOPIC_PREFIX": settings.topic_prefix,
            "SGB_STATE_DIR": str(settings.state_dir),
            "SGB_LOG_FORMAT": "json",
        }
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SGB,
            "connector",
            "run",
            "health",
            "--source",
            f"mllp://127.0.0.1:{port}",
            "--mapping",
            str(PROFILE),
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the MLLP listener did not start")


def test_every_message_is_acknowledged_after_kafka_has_its_event(kafka: Settings) -> None:
    rng = random.Random(11)
    good = [syn.adt_message(i, rng).encode() for i in range(40)]
    adult = syn.adt_message(100, rng, born="19800101").encode()
    broken = syn.adt_message(101, rng, born="").encode()
    port = free_port()
    proc = start_listener(kafka, port)
    try:
        acks = asyncio.run(exchange(port, [*good, adult, broken, b"not hl7 at all"], retry_ae=True))
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    codes = [ack_code(a) for a in acks]
    assert codes == ["AA"] * 41 + ["AR", "AR"]
    assert b"MSA|AA|MSG00000000" in acks[0]
    assert b"PID-7 (date of birth) is missing" in acks[41]

    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.health.v1")]
    assert len(events) == 40 and len({e["event_id"] for e in events}) == 40
    assert {e["details"]["site_ods_code"] for e in events} == {"RAL26", "RJ122"}
    letters = [codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1")]
    positions = sorted(d["position"] for d in letters)
    assert len(letters) == 2 and positions[0] == "message MSG00000101"
    assert positions[1].startswith("message sha256:")  # no control id to quote: a hash of the bytes
    assert {d["source_name"] for d in letters} == {f"mllp://127.0.0.1:{port}"}
    assert "41 accepted (AA), 2 rejected (AR)" in out


def test_no_aa_while_kafka_is_unreachable(kafka: Settings, tmp_path: Path) -> None:
    closed = free_port()
    unreachable = kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{closed}"})
    port = free_port()
    proc = start_listener(unreachable, port, "--ack-timeout", "2")
    try:
        acks = asyncio.run(
            exchange(port, [syn.adt_message(i, random.Random(i)).encode() for i in range(3)], retry_ae=False)
        )
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert [ack_code(a) for a in acks] == ["AE"] * 3


def test_ae_when_kafka_does_not_acknowledge_in_time(kafka: Settings) -> None:
    """Ready (schemas registered) but the producer cannot reach Kafka: AE after the timeout."""
    codecs = Codecs(registry_for(kafka))
    _ = codecs.event, codecs.dead_letter
    unreachable = kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    listener = MllpListener(
        unreachable,
        Hl7Mapper(load_profile(PROFILE)),
        "health-hl7",
        "127.0.0.1",
        0,
        ack_timeout=1.5,
        codecs=codecs,
    )

    async def scenario() -> list[bytes]:
        stop = asyncio.Event()
        task = asyncio.create_task(listener.serve(stop))
        await listener.listening.wait()
        try:
            return await exchange(
                listener.port,
                [
                    syn.adt_message(1, random.Random(1)).encode(),
                    syn.adt_message(2, random.Random(2), born="").encode(),
                ],
                retry_ae=False,
            )
        finally:
            stop.set()
            await task

    acks = asyncio.run(scenario())
    # The event could not be published and the dead letter could not be written: both AE.
    assert [ack_code(a) for a in acks] == ["AE", "AE"]
    assert listener.counts["accepted"] == 0
