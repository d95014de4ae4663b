"""An idempotent producer for asyncio code: each message's delivery report resolves a future.

For sources that acknowledge one message at a time (HL7 v2 over MLLP): the sender is told
"accepted" only once the future says Kafka has the message (``acks=all``), so the sender's
own retry is what makes the source durable, and there is no local checkpoint to keep. The
event loop itself serves librdkafka's delivery reports while any message awaits one.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from broker.clients import producer
from broker.settings import Settings
from broker.wire.envelope import Headers


class AckedProducer:
    """Produce and await Kafka's acknowledgement.

    The event loop serves librdkafka's delivery reports itself: while a message awaits its
    acknowledgement, the loop polls the producer without blocking, about once a millisecond
    (and at once again when a poll served reports), so each report resolves its future in the
    loop's own thread: no thread hand-off, no lock, no wake-up per burst, and no second thread
    contending for the interpreter. With nothing in flight it does not poll at all.

    Args:
        settings: how to reach Kafka.
        loop: the event loop the futures belong to.
        timeout_s: how long librdkafka keeps trying a message before reporting it failed.
    """

    #: Seconds between polls while messages await their acknowledgement.
    POLL_INTERVAL_S = 0.001

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        config: dict[str, Any] = {
            "linger.ms": 1,
            "message.timeout.ms": int(timeout_s * 1000),
            "socket.nagle.disable": True,  # one small request per answer: do not wait to coalesce
        }
        self._producer = producer(settings, **config)
        self._in_flight = 0
        self._polling: asyncio.Handle | asyncio.TimerHandle | None = None

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
            except BufferError:  # librdkafka's queue is full: let acknowledgements drain it
                self._producer.poll(0)
                await asyncio.sleep(0.01)
        self._in_flight += 1
        if self._polling is None:
            self._polling = self._loop.call_later(self.POLL_INTERVAL_S, self._poll)
        await future

    def close(self, timeout: float = 10.0) -> int:
        """Flush; returns how many messages were still unacknowledged."""
        if self._polling is not None:
            self._polling.cancel()
            self._polling = None
        return int(self._producer.flush(timeout))

    def _poll(self) -> None:
        served = self._producer.poll(0)  # delivery reports run here, in the loop's thread
        if self._in_flight <= 0:
            self._polling = None
        elif served:
            self._polling = self._loop.call_soon(self._poll)
        else:
            self._polling = self._loop.call_later(self.POLL_INTERVAL_S, self._poll)

    def _report(self, future: asyncio.Future[None], error: KafkaError | None, message: Message) -> None:
        self._in_flight -= 1
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(KafkaException(error))
