"""The schools' webhook answers 202 only once Kafka has acknowledged the event (issue 21, item 6):
the handler awaits the acknowledgement, and the acknowledged producer resolves a send only on
its message's own delivery report, served by the event loop; a failed report is a 503."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaError, KafkaException

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from connectors.education import synthetic as syn
from connectors.education.tokens import TokenStore
from connectors.education.webhook import ConcernWebhook
from connectors.runtime import acked


class HeldKafka:
    """librdkafka as the producer sees it: each message's delivery report waits until the test
    lets it through (``ack``), and is served only by ``poll``."""

    def __init__(self) -> None:
        self.waiting: list[Any] = []
        self.released: list[tuple[Any, KafkaError | None]] = []
        self.polls = 0

    def produce(self, topic: str, value: bytes, key: Any = None, **kw: Any) -> None:
        self.waiting.append(kw["on_delivery"])

    def ack(self, error: KafkaError | None = None) -> None:
        self.released.append((self.waiting.pop(0), error))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        served, self.released = self.released, []
        for report, error in served:
            report(error, None)
        return len(served)

    def flush(self, timeout: float = 0) -> int:
        return len(self.waiting)


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> HeldKafka:
    held = HeldKafka()
    monkeypatch.setattr(acked, "producer", lambda settings, **config: held)
    return held


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


def test_a_send_returns_only_after_its_own_delivery_report(kafka: HeldKafka) -> None:
    async def scenario() -> None:
        producer = acked.AckedProducer(Settings(), asyncio.get_running_loop(), 10)
        first = asyncio.create_task(producer.send("t", b"1"))
        second = asyncio.create_task(producer.send("t", b"2"))
        await settle()
        assert not first.done() and not second.done()  # Kafka has neither: nobody is told yes
        kafka.ack()
        await settle()
        assert first.done() and first.exception() is None and not second.done()
        kafka.ack(KafkaError(KafkaError._MSG_TIMED_OUT))
        await settle()
        assert isinstance(second.exception(), KafkaException)
        polls = kafka.polls
        await settle()
        assert kafka.polls == polls  # nothing in flight: the loop does not poll
        assert producer.close() == 0

    asyncio.run(scenario())


def test_the_webhook_answers_202_only_once_kafka_acknowledged(kafka: HeldKafka, tmp_path: Path) -> None:
    tokens = TokenStore(tmp_path / "tokens")
    token = tokens.add("100000")
    webhook = ConcernWebhook(Settings(), tokens, ack_timeout=2, codecs=Codecs(InMemoryRegistry()))
    body = syn.concern_payload(random.Random(6), 1)

    async def scenario() -> None:
        webhook._producer = acked.AckedProducer(Settings(), asyncio.get_running_loop(), 2)
        transport = httpx.ASGITransport(app=webhook.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as client:
            auth = {"Authorization": f"Bearer {token}"}
            answer = asyncio.create_task(client.post("/v1/concerns", json=body, headers=auth))
            await settle()
            assert not answer.done()  # the event is produced, not acknowledged: no answer yet
            kafka.ack()
            assert (await answer).status_code == 202
            refused = asyncio.create_task(client.post("/v1/concerns", json=body, headers=auth))
            await settle()
            assert not refused.done()
            kafka.ack(KafkaError(KafkaError._MSG_TIMED_OUT))
            assert (await refused).status_code == 503
        assert webhook.counts["published"] == 1 and webhook.counts["unavailable"] == 1

    asyncio.run(scenario())
