"""Publishing mapped events to an agency's ingress topic, keyed by the child."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message

from broker.clients import flush_or_raise, producer
from broker.exceptions import SgbError
from broker.security import provenance
from broker.security.ciphers import publisher_cipher
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.child_keys import child_key
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
        self.topic = settings.topic(ingress_topic(agency))
        self.codecs = Codecs(registry_for(settings))
        self.producer = producer(settings)
        self.cipher = publisher_cipher(settings)
        self.provenance = provenance.for_process(settings, signer or self.agency.lower())

    def publish(self, event: dict[str, Any], on_delivery: Acknowledged | None = None) -> None:
        """Encode and produce one event; ``on_delivery`` is called when Kafka acknowledges it."""
        source_agency = (event.get("source") or {}).get("agency")
        if source_agency != self.agency:
            msg = f"Event {event.get('event_id')} is from {source_agency}, not {self.agency}."
            raise SgbError(msg)
        key = child_key(event.get("child") or {})
        if key is None:
            msg = f"Event {event.get('event_id')} identifies no child."
            raise SgbError(msg)
        if self.cipher is not None:
            event = self.cipher.seal(event, key)
        value = self.codecs.event.encode(event)
        kwargs: dict[str, Any] = {"on_delivery": on_delivery} if on_delivery else {}
        if self.provenance is not None:
            kwargs["headers"] = self.provenance.sign(self.topic, key.encode(), value)
        while True:
            try:
                self.producer.produce(self.topic, key=key.encode(), value=value, **kwargs)
                break
            except BufferError:
                self.producer.poll(0.1)  # local queue full: let deliveries drain
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until Kafka has acknowledged everything published."""
        flush_or_raise(self.producer, timeout, f"publishing to {self.topic}")
