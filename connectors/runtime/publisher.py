"""Publishing mapped events to an agency's ingress topic, keyed by the child."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from confluent_kafka import KafkaError, Message

from broker.clients import flush_or_raise, producer
from broker.exceptions import SgbError
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.envelope import IngressEnvelope
from broker.wire.registry import registry_for
from schemas.topics import ingress_topic

Acknowledged = Callable[[KafkaError | None, Message], None]


class EventPublisher:
    """An idempotent (``acks=all``) producer of one agency's events.

    Args:
        settings: how to reach Kafka.
        agency: HEALTH, POLICE, EDUCATION or LOCAL_AUTHORITY; events from another agency are refused.
        signer: who signs the events when ``SGB_PROVENANCE`` is on: the agency (``police``) by
            default, or one of its organisations (``police.NPCC01``).
    """

    def __init__(self, settings: Settings, agency: str, signer: str | None = None) -> None:
        self.settings = settings
        self.agency = agency.upper()
        self.codecs = Codecs(registry_for(settings))
        self._signer = signer
        self.topic = settings.topic(ingress_topic(agency))
        self.producer = producer(settings)

    @cached_property
    def envelope(self) -> IngressEnvelope:
        """The envelope, made (and the event schema registered) at the first publish, so that
        making a publisher costs nothing until it is used."""
        return IngressEnvelope(self.settings, self.agency, self._signer, serde=self.codecs.event)

    def publish(
        self, event: dict[str, Any], on_delivery: Acknowledged | None = None, child: str | None = None
    ) -> None:
        """Encode and produce one event; ``on_delivery`` is called when Kafka acknowledges it.
        ``child`` keys an event that names no child (an anonymous erasure notice)."""
        source_agency = (event.get("source") or {}).get("agency")
        if source_agency != self.agency:
            msg = f"Event {event.get('event_id')} is from {source_agency}, not {self.agency}."
            raise SgbError(msg)
        message = self.envelope.wrap(event, child)
        kwargs: dict[str, Any] = {"on_delivery": on_delivery} if on_delivery else {}
        if message.headers is not None:
            kwargs["headers"] = message.headers
        while True:
            try:
                self.producer.produce(message.topic, key=message.key, value=message.value, **kwargs)
                break
            except BufferError:
                self.producer.poll(0.1)  # local queue full: let deliveries drain
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until Kafka has acknowledged everything published."""
        flush_or_raise(self.producer, timeout, f"publishing to {self.topic}")
