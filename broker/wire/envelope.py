"""The one envelope: an event onto the wire and back.

Onto the wire (:class:`IngressEnvelope`, for every connector): the child's key (its
pseudonym with field encryption on, :mod:`broker.security.pseudonyms`), sealing of the
fields field encryption covers (with the child's key), Avro in the Confluent framing, and
the agency's signature when provenance is on. One rule for an event that identifies no
child: it is refused with :class:`UnkeyedEvent` (a :class:`SerdeError`), so every connector
dead-letters it; an unkeyed event would lose its order and could not be sealed.

Off the wire (:class:`EnvelopeReader`, for the filter and hubs): verify the signature,
decode, then open sealed fields. A message that fails any step is a :class:`Refusal`
naming only the step and the reason, never a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from broker import tracing
from broker.exceptions import SerdeError
from broker.security import provenance
from broker.security.ciphers import child_namer, publisher_cipher
from broker.settings import Settings
from broker.wire.codecs import Codecs, EventSerde
from broker.wire.registry import registry_for
from schemas.child_keys import NO_CHILD, child_key
from schemas.topics import ingress_topic

#: Kafka message headers as confluent-kafka takes them.
Headers = list[tuple[str, str | bytes | None]]
#: Opens sealed fields: (event) -> (event, whether its bytes can be reused as they are).
Opener = Callable[[dict[str, Any]], tuple[dict[str, Any], bool]]


class UnkeyedEvent(SerdeError):
    """An event names no child identifier, so it has no message key; it is dead-lettered."""


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One message ready to produce: topic (physical), key, framed value and headers."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers | None


class IngressEnvelope:
    """Turns one agency's events into messages for its ingress topic.

    Args:
        settings: the topic prefix, field encryption and provenance settings.
        agency: HEALTH, POLICE, EDUCATION or LOCAL_AUTHORITY.
        signer: who signs when ``SGB_PROVENANCE`` is on: the agency (``police``) by default, or
            one of its organisations (``police.NPCC01``).
        serde: the event serde, when the caller already has one.
    """

    __slots__ = ("_cipher", "_name", "_provenance", "_serde", "agency", "topic")

    def __init__(
        self, settings: Settings, agency: str, signer: str | None = None, serde: EventSerde | None = None
    ) -> None:
        self.agency = agency.upper()
        self.topic = settings.topic(ingress_topic(agency))
        self._serde = serde or Codecs(registry_for(settings)).event
        self._cipher = publisher_cipher(settings)
        self._name = child_namer(settings)
        self._provenance = provenance.for_process(settings, signer or self.agency.lower())

    def wrap(self, event: dict[str, Any], child: str | None = None) -> WireMessage:
        """The message for ``event``; raises :class:`SerdeError` (:class:`UnkeyedEvent` when it
        names no child) with a sentence that names the field, never its value. With tracing on,
        a ``publish`` span whose context the message carries in its headers.

        ``child`` keys an event that names no child itself (an erasure notice, which must not
        carry the identifier it erases) by that child's key."""
        if not tracing.enabled():
            return self._wrap(event, [], child)
        with tracing.span("publish", None, {"messaging.destination.name": self.topic}):
            return self._wrap(event, tracing.trace_headers(), child)

    def _wrap(self, event: dict[str, Any], trace_headers: Headers, child: str | None) -> WireMessage:
        named = child_key(event.get("child") or {})
        key = named or child
        if key is None:
            raise UnkeyedEvent(NO_CHILD)
        if self._cipher is not None and named is not None:  # a notice naming no child has nothing to seal
            event = self._cipher.seal(event, key)
        value = self._serde.encode(event)
        key_bytes = self._name(key).encode()
        headers: Headers | None = trace_headers or None
        if self._provenance is not None:
            headers = [*trace_headers, *self._provenance.sign(self.topic, key_bytes, value)]
        return WireMessage(self.topic, key_bytes, value, headers)


class DeliveryEnvelope:
    """Turns a recipient's copy into its delivery message: sealed fields, Avro framing, the
    recipient's own message key, the filter's decision headers and its signature.

    Args:
        serde: the event serde.
        seal: seals the fields field encryption covers, with the child's key (identity when off).
        signer: the filter's provenance when ``SGB_PROVENANCE`` is on, else None.
    """

    __slots__ = ("_seal", "_serde", "_signer")

    def __init__(
        self,
        serde: EventSerde,
        seal: Callable[[dict[str, Any], str], dict[str, Any]],
        signer: provenance.Provenance | None = None,
    ) -> None:
        self._serde = serde
        self._seal = seal
        self._signer = signer

    def wrap(
        self,
        topic: str,
        copy: dict[str, Any] | None,
        child: str,
        key: bytes,
        headers: Headers,
        unchanged: bytes | None = None,
    ) -> WireMessage:
        """The delivery to the physical ``topic``: ``unchanged`` (the ingress bytes, when the copy
        is the event as it came) or ``copy`` sealed and encoded; raises :class:`SerdeError`."""
        if unchanged is not None:
            value = unchanged
        else:
            if copy is None:
                msg = "A delivery needs the recipient's copy or the unchanged event."
                raise SerdeError(msg)
            value = self._serde.encode(self._seal(copy, child))
        out: Headers = list(headers)
        if self._signer is not None:
            out += self._signer.sign(topic, key, value)
        if tracing.enabled():  # the decision's span, so the hub's write joins the event's trace
            out += tracing.trace_headers()
        return WireMessage(topic, key, value, out)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message the reader would not take: why, and the event id when it could be decoded."""

    reason: str
    event_id: str | None = None
    #: Set when the signature check failed (its reason code and claimed key id).
    rejection: provenance.Rejection | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    """A message read off the wire: the event, opened, and whether its bytes can be reused."""

    event: dict[str, Any]
    reusable: bool


class EnvelopeReader:
    """Reads messages written through the envelope: verify, decode, open.

    Args:
        serde: the event serde.
        verifier: the process's provenance when ``SGB_PROVENANCE`` is on, else None.
        opener: opens sealed fields; None leaves them sealed.
    """

    __slots__ = ("_opener", "_serde", "verifier")

    def __init__(
        self, serde: EventSerde, verifier: provenance.Provenance | None = None, opener: Opener | None = None
    ) -> None:
        self._serde = serde
        self.verifier = verifier
        self._opener = opener

    def prepare(self, messages: list[Message]) -> None:
        """Verify a batch's signatures ahead of :meth:`read`, on all cores."""
        if self.verifier is not None:
            self.verifier.prepare(messages)

    def read(self, msg: Message) -> Opened | Refusal:
        """The opened event, or why it was refused (an unsigned or forged message is refused
        even when it decodes, so nothing is decided or delivered on it)."""
        rejected = self.verifier.check(msg) if self.verifier is not None else None
        try:
            event = self._serde.decode(msg.value() or b"")
        except SerdeError as exc:
            if rejected is not None:
                return Refusal(rejected.sentence, None, rejected)
            return Refusal(str(exc))
        if rejected is not None:
            return Refusal(rejected.sentence, event.get("event_id"), rejected)
        if self._opener is None:
            return Opened(event, True)
        opened, reusable = self._opener(event)
        return Opened(opened, reusable)
