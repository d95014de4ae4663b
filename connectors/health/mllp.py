"""The MLLP listener: HL7 v2 from a hospital integration engine, acknowledged only when safe.

Each MLLP block (one message, or several: every one is read) gets one answer:

* ``AA`` once Kafka has acknowledged the event of every message in it (``acks=all``), or
  when a message is valid but has nothing to publish (an adult, a non-emergency visit, a
  trigger held for corrections or not used, a training message: each counted by kind);
* ``AR`` with the reason when a message cannot be decoded (MSH-18), parsed or mapped, or is
  larger than 1 MiB, and only once its dead letter (original bytes, or the first 64 KiB of an
  oversized one; position; reason) is acknowledged by Kafka: the sender must not resend it,
  and it is not lost; the connection stays open;
* ``AE`` when Kafka is unavailable or did not acknowledge in time: the sender keeps the
  message and sends it again.

Nothing is acknowledged ``AA`` before Kafka has it, so nothing is lost. A message's event id
comes from its identity (sender, MSH-10, MSH-7 and a digest of its content,
:attr:`Hl7Message.identity`): a resend after a lost ``AA`` carries the same id, so hubs drop
the copy, while a different message that reuses a control id gets its own. A connection
silent for ``idle_timeout`` seconds, between messages or in the middle of one (half-open),
is closed.
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

from broker import metrics, tracing
from broker.exceptions import SerdeError, SgbError
from broker.logs import get_logger
from broker.probes import Health, beating
from broker.settings import Settings
from broker.wire import dead_letters as deadletter
from broker.wire.codecs import Codecs
from broker.wire.envelope import Headers, IngressEnvelope
from broker.wire.registry import registry_for
from connectors.exceptions import ConnectorError, MappingError, NoEvent
from connectors.health.hl7_mapping import Hl7Mapper
from connectors.health.hl7v2 import CONTENT_TYPE, Hl7Message, bare_ack
from connectors.health.hl7v2_read import decode_message, parse_message, split_messages
from connectors.health.mllp_framing import BlockReader, Oversized, frame
from connectors.health.profile import load_profile
from connectors.runtime.acked import AckedProducer
from connectors.runtime.checkpoint import validate_name
from connectors.runtime.delivery import check_topics
from connectors.runtime.readers import Malformed
from connectors.runtime.records import SourceRecord
from schemas.topics import DLQ_TOPIC, ingress_topic

log = get_logger("connectors.mllp")

COMPONENT = "connector:health"
MAX_MESSAGE = 1 << 20
IDLE_TIMEOUT = 300.0
#: How bad each answer is: a block's answer is its worst message's.
_SEVERITY = {"AA": 0, "AR": 1, "AE": 2}
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
        idle_timeout: seconds a connection may be silent (between or inside blocks).
        max_message: the largest block read whole; a larger one is answered AR.
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
        idle_timeout: float = IDLE_TIMEOUT,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self.settings = settings
        self.idle_timeout = idle_timeout
        self.max_message = max_message
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
        self._kinds_logged: set[str] = set()
        #: Live while the event loop turns; ready once listening with its schemas registered.
        self.health = Health("mllp")
        self.health.add_check("listening", self.listening.is_set)
        self.health.add_check("kafka", lambda: self._codecs is not None)
        metrics.start_connector_series("HEALTH", COMPONENT)

    # -- lifecycle -------------------------------------------------------------------------
    async def serve(self, stop: asyncio.Event) -> Counter[str]:
        """Listen until ``stop`` is set, then finish the messages in hand and return the counts."""
        loop = asyncio.get_running_loop()
        self._producer = AckedProducer(self.settings, loop, self.ack_timeout)
        server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("mllp listening", port=self.port, topic=self.topic)
        self.listening.set()
        preparing = asyncio.create_task(self._prepare() if self._codecs is None else asyncio.sleep(0))
        heart = asyncio.create_task(beating(self.health))
        try:
            await stop.wait()
        finally:
            preparing.cancel()
            heart.cancel()
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

    # -- one connection, one block at a time ------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        blocks = BlockReader(reader, self.max_message, self.idle_timeout)
        try:
            while True:
                try:
                    block = await blocks.read_block()
                except TimeoutError:
                    self.counts["timed_out"] += 1
                    log.warning("mllp connection idle; closed", idle_timeout_s=self.idle_timeout)
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if block is None:
                    return
                self._busy.add(writer)
                try:
                    answer = await (self.handle(block) if isinstance(block, bytes) else self.oversized(block))
                    writer.write(frame(answer))
                    await writer.drain()
                finally:
                    self._busy.discard(writer)
        except ConnectionError:
            return  # the sender went away before its answer; it resends
        finally:
            self._writers.discard(writer)
            writer.close()

    async def handle(self, block: bytes) -> bytes:
        """The acknowledgement for one block of one or more messages (see the module docstring)."""
        answers = [await self._one(raw) for raw in split_messages(block) or [block]]
        if len(answers) == 1:
            return answers[0][1]
        worst = max(answers, key=lambda a: _SEVERITY[a[0]])
        return worst[1]

    async def oversized(self, block: Oversized) -> bytes:
        """Dead-letter a block over the size limit (its first bytes kept) and answer AR."""
        self.counts["received"] += 1
        self.counts["oversized"] += 1
        first = split_messages(block.head)[:1]
        header = parse_message(first[0].split(b"\r", 1)[0]) if first else Malformed("")
        message = header if isinstance(header, Hl7Message) else None
        reason = (
            f"The message is larger than the {self.max_message // 1024} KiB this listener reads "
            f"({block.size} bytes); its first {len(block.head)} bytes are kept."
        )
        record = self._record(message, block.head, whole=False)
        return await self._reject(
            record, reason, message.ack if message is not None else lambda c, r: bare_ack(c, r)
        )

    async def _one(self, raw: bytes) -> tuple[str, bytes]:
        """(MSA-1 code, acknowledgement) for one message, in its ``map`` span when tracing is on."""
        with tracing.span("map"):
            return await self._map_and_send(raw)

    async def _map_and_send(self, raw: bytes) -> tuple[str, bytes]:
        self.counts["received"] += 1
        parsed = parse_message(raw)
        if isinstance(parsed, Malformed):
            header = _header_only(raw)
            record = self._record(header, raw, whole=False)
            ack = header.ack if header is not None else (lambda code, reason: bare_ack(code, reason))
            return await self._coded(self._reject(record, parsed.reason, ack))
        message = parsed
        record = self._record(message, raw)
        if self._codecs is None:
            self.counts["errors"] += 1
            return "AE", message.ack("AE", NOT_READY)
        try:
            event = self.mapper(record)
        except NoEvent as exc:
            self.counts["no_event"] += 1
            if exc.kind != "no_event":
                self.counts[exc.kind] += 1
                if exc.kind not in self._kinds_logged:
                    self._kinds_logged.add(exc.kind)
                    log.info(
                        "message not published", kind=exc.kind, reason=str(exc), event_id=record.event_id
                    )
            self.counts["accepted"] += 1
            metrics.record_connector("HEALTH", "skipped")
            return "AA", message.ack("AA")
        except MappingError as exc:
            return await self._coded(self._reject(record, str(exc), message.ack))
        except Exception as exc:  # a mapping bug must not lose the message: it is dead-lettered
            log.error("mapping failed unexpectedly", position=record.position, exc_type=type(exc).__name__)
            return await self._coded(
                self._reject(record, f"The message could not be mapped ({type(exc).__name__}).", message.ack)
            )
        if self._envelope is None:
            self._envelope = IngressEnvelope(self.settings, "HEALTH", serde=self._codecs.event)
        try:
            wire = self._envelope.wrap(event)
        except SerdeError as exc:  # no child key, or not the schema: dead-lettered, answered AR
            return await self._coded(self._reject(record, str(exc), message.ack))
        if not await self._send(wire.topic, wire.value, wire.key, wire.headers):
            self.counts["errors"] += 1
            return "AE", message.ack("AE", NOT_ACKED)
        self.counts["accepted"] += 1
        self.counts["published"] += 1
        metrics.record_connector("HEALTH", "published")
        return "AA", message.ack("AA")

    @staticmethod
    async def _coded(answer: Any) -> tuple[str, bytes]:
        ack: bytes = await answer
        return ack.split(b"\rMSA", 1)[1][1:3].decode(), ack

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
        metrics.record_connector("HEALTH", "dead_lettered")
        metrics.record_dead_letter(COMPONENT)
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

    def _record(self, message: Hl7Message | None, block: bytes, *, whole: bool = True) -> SourceRecord:
        """The record of a message; ``whole`` when ``message`` is all of it (not just its MSH)."""
        control_id = message.control_id if message is not None else None
        sender = message.sender if message is not None else "unknown"
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
            identity=message.identity if message is not None and whole else None,
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
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> Counter[str]:
    """Run the listener until SIGTERM or Ctrl-C; returns the counts. With ``metrics_port``,
    ``/metrics``, ``/livez`` and ``/readyz`` are served on ``metrics_host:metrics_port``."""
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
        with metrics.serving(metrics_port, listener.health, metrics_host):
            return asyncio.run(main())
    except OSError as exc:
        msg = f"Could not listen on {host}:{port}: {exc.strerror or exc}."
        raise ConnectorError(msg) from None


def _header_only(raw: bytes) -> Hl7Message | None:
    """The message's MSH alone, to answer a message whose body cannot be read; None if even that fails."""
    first = raw.split(b"\r", 1)[0]
    try:
        return Hl7Message(decode_message(first) if first.isascii() else first.decode("latin-1"))
    except ValueError:
        return None
