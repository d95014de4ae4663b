"""An idempotent producer for asyncio code: each message's delivery report resolves a future.

For sources that acknowledge one message at a time (HL7 v2 over MLLP): the sender is told
"accepted" only once the future says Kafka has the message (``acks=all``), so the sender's
own retry is what makes the source durable, and there is no local checkpoint to keep. A
poll thread serves librdkafka's delivery reports and hands them to the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from broker.clients import producer
from broker.settings import Settings
from broker.wire.envelope import Headers

#: Message headers as librdkafka takes them.


class AckedProducer:
    """Produce and await Kafka's acknowledgement.

    Args:
        settings: how to reach Kafka.
        loop: the event loop the futures belong to.
        timeout_s: how long librdkafka keeps trying a message before reporting it failed.
    """

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        config: dict[str, Any] = {
            "linger.ms": 1,
            "message.timeout.ms": int(timeout_s * 1000),
            "socket.nagle.disable": True,  # one small request per answer: do not wait to coalesce
        }
        self._producer = producer(settings, **config)
        self._reports: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._poll, name="kafka-acks", daemon=True)
        self._thread.start()

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Produce one message and return when Kafka has acknowledged it; raises ``KafkaException`` if not."""
        future: asyncio.Future[None] = self._loop.create_future()
        while True:
            try:
                self._producer.produce(
                    topic, value, key, headers=headers, on_delivery=partial(self._report, future)
                )
                break
            except BufferError:
                await asyncio.sleep(0.01)
        await future

    def close(self, timeout: float = 10.0) -> int:
        """Flush and stop the poll thread; returns how many messages were still unacknowledged."""
        self._running = False
        self._thread.join(2)
        return int(self._producer.flush(timeout))

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.05)

    def _report(self, future: asyncio.Future[None], error: KafkaError | None, message: Message) -> None:
        # Reports arrive in bursts: wake the event loop once per burst, not once per message.
        with self._lock:
            self._reports.append((future, error))
            if len(self._reports) > 1:
                return
        self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        with self._lock:
            reports, self._reports = self._reports, []
        for future, error in reports:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(KafkaException(error))
