"""The MLLP listener: HL7 v2 from a hospital integration engine, acknowledged only when safe.

For each message (MLLP framing by ``hl7.mllp``), the answer is:

* ``AA`` once Kafka has acknowledged the event (``acks=all``), or when the message is valid
  but has nothing to publish (an adult, a non-emergency visit);
* ``AR`` with the reason when the message cannot be parsed or mapped, and only once its
  dead letter (original bytes, position, reason) is acknowledged by Kafka: the sender must
  not resend it, and it is not lost;
* ``AE`` when Kafka is unavailable or did not acknowledge in time: the sender keeps the
  message and sends it again.

Nothing is acknowledged ``AA`` before Kafka has it, so nothing is lost; a resend after a
lost ``AA`` carries the same event id (uuid5 of connector name, sender and MSH-10), so a
duplicate is recognisable downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from hl7.mllp import InvalidBlockError, start_hl7_server

from broker.exceptions import SerdeError, SgbError
from broker.logs import get_logger
from broker.settings import Settings
from broker.wire import dead_letters as deadletter
from broker.wire.codecs import Codecs
from broker.wire.envelope import Headers, IngressEnvelope
from broker.wire.registry import registry_for
from connectors.exceptions import ConnectorError, MappingError, NoEvent
from connectors.health.hl7_mapping import Hl7Mapper
from connectors.health.hl7v2 import CONTENT_TYPE, Hl7Message, bare_ack
from connectors.health.profile import load_profile
from connectors.runtime.acked import AckedProducer
from connectors.runtime.delivery import check_topics
from connectors.runtime.records import SourceRecord
from schemas.topics import DLQ_TOPIC, ingress_topic

log = get_logger("connectors.mllp")

COMPONENT = "connector:health"
MAX_MESSAGE = 1 << 20
NOT_READY = "Kafka is not reachable yet; send the message again later."
NOT_ACKED = "Kafka did not acknowledge the event; send the message again."


def parse_endpoint(source: str) -> tuple[str, int]:
    """``mllp://HOST:PORT`` as (host, port); raises ``SgbError`` in one sentence."""
    host, sep, port = source.removeprefix("mllp://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        msg = f"--source {source!r} is not mllp://HOST:PORT, for example mllp://0.0.0.0:2575."
        raise SgbError(msg)
    return host, int(port)


class MllpListener:
    """Accept HL7 v2 messages and publish their events.

    Args:
        settings: how to reach Kafka.
        mapper: the HL7 mapping function.
        name: the connector's name (part of each event id).
        host: the address to listen on.
        port: the port to listen on (0 picks a free one; see :attr:`port`).
        ack_timeout: seconds to wait for Kafka before answering AE.
        codecs: serdes whose schemas are already registered; the listener is then ready at
            once instead of registering them when Kafka first answers.
    """

    def __init__(
        self,
        settings: Settings,
        mapper: Hl7Mapper,
        name: str,
        host: str,
        port: int,
        ack_timeout: float = 10.0,
        codecs: Codecs | None = None,
    ) -> None:
        self.settings = settings
        self.mapper = mapper
        self.name = name
        self.host = host
        self.port = port
        self.ack_timeout = ack_timeout
        self.topic = settings.topic(ingress_topic("HEALTH"))
        self.counts: Counter[str] = Counter()
        self.listening = asyncio.Event()
        self._codecs: Codecs | None = codecs
        self._envelope: IngressEnvelope | None = None
        self._writers: set[Any] = set()
        self._busy: set[Any] = set()
        self._producer: AckedProducer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def serve(self, stop: asyncio.Event) -> Counter[str]:
        """Listen until ``stop`` is set, then finish the messages in hand and return the counts."""
        loop = asyncio.get_running_loop()
        self._producer = AckedProducer(self.settings, loop, self.ack_timeout)
        server = await start_hl7_server(self._client, self.host, self.port, limit=MAX_MESSAGE)
        self.port = server.sockets[0].getsockname()[1]
        log.info("mllp listening", port=self.port, topic=self.topic)
        self.listening.set()
        preparing = asyncio.create_task(self._prepare() if self._codecs is None else asyncio.sleep(0))
        try:
            await stop.wait()
        finally:
            preparing.cancel()
            server.close()
            await self._close_connections()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)
            unacked = await asyncio.to_thread(self._producer.close, self.ack_timeout)
            log.info("mllp stopped", counts=dict(self.counts), records=unacked)
        return self.counts

    async def _close_connections(self) -> None:
        """Let each message in hand get its answer, then close every connection (senders keep
        theirs open, and the server does not finish while one is)."""
        deadline = asyncio.get_running_loop().time() + self.ack_timeout + 5
        while self._busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for writer in list(self._writers):
            writer.close()

    async def _prepare(self) -> None:
        """Check the topics and register the schemas, retrying until Kafka answers."""
        while True:
            try:
                self._codecs = await asyncio.to_thread(self._codecs_ready)
                log.info("mllp ready", topic=self.topic)
                return
            except (SgbError, KafkaException) as exc:
                log.warning("kafka not ready; answering AE meanwhile", reason=str(exc))
                await asyncio.sleep(5)

    def _codecs_ready(self) -> Codecs:
        check_topics(self.settings, [self.topic, self.settings.topic(DLQ_TOPIC)], timeout=5)
        codecs = Codecs(registry_for(self.settings))
        _ = codecs.event, codecs.dead_letter  # registers both schemas
        return codecs

    # -- one connection, one message at a time ----------------------------------------------
    async def _client(self, reader: Any, writer: Any) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    block = await reader.readblock()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except (InvalidBlockError, ValueError):
                    log.warning(
                        "mllp framing error; connection closed", reason="not an MLLP block, or too large"
                    )
                    return
                self._busy.add(writer)
                try:
                    writer.writeblock(await self.handle(block))
                    await writer.drain()
                finally:
                    self._busy.discard(writer)
        except ConnectionError:
            return  # the sender went away before its answer; it resends
        finally:
            self._writers.discard(writer)
            writer.close()

    async def handle(self, block: bytes) -> bytes:
        """The acknowledgement for one message (see the module docstring)."""
        self.counts["received"] += 1
        text = block.decode("utf-8", errors="replace")
        try:
            message = Hl7Message(text)
        except ValueError as exc:
            record = self._record(None, block)
            return await self._reject(record, str(exc), lambda code, reason: bare_ack(code, reason))
        record = self._record(message, block)
        if self._codecs is None:
            self.counts["errors"] += 1
            return message.ack("AE", NOT_READY)
        try:
            event = self.mapper(record)
        except NoEvent:
            self.counts["no_event"] += 1
            self.counts["accepted"] += 1
            return message.ack("AA")
        except MappingError as exc:
            return await self._reject(record, str(exc), message.ack)
        except Exception as exc:  # a mapping bug must not lose the message: it is dead-lettered
            log.error("mapping failed unexpectedly", position=record.position, exc_type=type(exc).__name__)
            return await self._reject(
                record, f"The message could not be mapped ({type(exc).__name__}).", message.ack
            )
        if self._envelope is None:
            self._envelope = IngressEnvelope(self.settings, "HEALTH", serde=self._codecs.event)
        try:
            wire = self._envelope.wrap(event)
        except SerdeError as exc:  # no child key, or not the schema: dead-lettered, answered AR
            return await self._reject(record, str(exc), message.ack)
        if not await self._send(wire.topic, wire.value, wire.key, wire.headers):
            self.counts["errors"] += 1
            return message.ack("AE", NOT_ACKED)
        self.counts["accepted"] += 1
        self.counts["published"] += 1
        return message.ack("AA")

    async def _reject(self, record: SourceRecord, reason: str, ack: Callable[[str, str], bytes]) -> bytes:
        """Dead-letter the message, then answer AR; AE if the dead letter could not be written."""
        if self._codecs is None:
            self.counts["errors"] += 1
            return ack("AE", NOT_READY)
        origin = deadletter.Origin(source_name=record.source, position=record.position)
        payload, reason = deadletter.source_payload(self.settings, record.payload(), reason)  # erasable
        value = self._codecs.dead_letter.encode(
            deadletter.dead_letter_record(COMPONENT, reason, payload, origin, record.event_id)
        )
        headers: Headers = list(deadletter.headers(COMPONENT, reason, origin))
        if not await self._send(self.settings.topic(DLQ_TOPIC), value, None, headers):
            self.counts["errors"] += 1
            return ack("AE", NOT_ACKED)
        self.counts["rejected"] += 1
        self.counts["dead_lettered"] += 1
        log.warning(
            "message dead-lettered",
            source=record.source,
            position=record.position,
            event_id=record.event_id,
            reason=reason,
        )
        return ack("AR", reason)

    async def _send(self, topic: str, value: bytes, key: bytes | None, headers: Headers | None) -> bool:
        assert self._producer is not None
        try:
            await asyncio.wait_for(self._producer.send(topic, value, key, headers), self.ack_timeout + 5)
        except (KafkaException, TimeoutError):
            return False
        return True

    def _record(self, message: Hl7Message | None, block: bytes) -> SourceRecord:
        control_id = message.control_id if message is not None else None
        sender = f"{message.raw('MSH', 3)}|{message.raw('MSH', 4)}" if message is not None else "unknown"
        position = (
            f"message {control_id}"
            if control_id
            else f"message sha256:{hashlib.sha256(block).hexdigest()[:16]}"
        )
        return SourceRecord(
            self.name,
            f"mllp://{self.host}:{self.port}",
            f"mllp:{sender}",
            0,
            position,
            message,
            block,
            CONTENT_TYPE,
        )


def serve_mllp(
    settings: Settings,
    host: str,
    port: int,
    *,
    mapping: Path | None,
    name: str,
    ack_timeout: float,
    echo: Callable[[str], None],
) -> Counter[str]:
    """Run the listener until SIGTERM or Ctrl-C; returns the counts."""
    from connectors.runtime.checkpoint import validate_name

    listener = MllpListener(
        settings, Hl7Mapper(load_profile(mapping)), validate_name(name), host, port, ack_timeout
    )

    async def main() -> Counter[str]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        task = asyncio.create_task(listener.serve(stop))
        waiter = asyncio.create_task(listener.listening.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if listener.listening.is_set():
            echo(f"Listening for HL7 v2 (MLLP) on {host}:{listener.port}; Ctrl-C or SIGTERM stops.")
        return await task

    try:
        return asyncio.run(main())
    except OSError as exc:
        msg = f"Could not listen on {host}:{port}: {exc.strerror or exc}."
        raise ConnectorError(msg) from None
