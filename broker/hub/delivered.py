"""What a hub receives: one delivery, decoded and verified, as a typed :class:`HubEvent`.

:func:`verify` checks that a delivery is on the hub's own topic, decodes against its
registered schema and carries the filter's ``sgb.event_id`` and ``sgb.policy_version``
headers; the filter's decision (rule, reason, lawful basis, consent state) comes from the
other ``sgb.*`` headers. :mod:`broker.hub.subscriber` reads deliveries and hands these to sinks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from confluent_kafka import Message

from broker.exceptions import SgbError
from broker.security.provenance import Provenance, Rejection
from broker.wire.codecs import Codecs
from broker.wire.envelope import EnvelopeReader, Refusal
from schemas.jsonform import to_json

DECISION_HEADERS = ("rule", "reason", "lawful_basis", "consent_state")


class DeliveryRejected(SgbError):
    """A delivery failed verification; it is not acknowledged and the subscriber stops."""


class DeliveryRefused(SgbError):
    """A delivery failed provenance: it is acknowledged, counted and never written.

    Args:
        rejection: why the signature check failed.
        event_id: the event id its headers claim (never its content).
    """

    def __init__(self, rejection: Rejection, event_id: str | None) -> None:
        super().__init__(rejection.sentence)
        self.rejection = rejection
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One event as a hub receives it: verified, with the fields a hub reads and where it came from.

    Fields the hub may not see are ``None`` (or empty) and named in :attr:`withheld_fields`
    as dotted paths, for example ``child.address`` or ``narrative``.
    """

    event_id: str
    event_type: str
    risk: str
    occurred_at: datetime
    recorded_at: datetime
    agency: str
    source_organisation: str
    source_organisation_name: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    nhs_number: str | None
    details: Mapping[str, Any]
    narrative: str | None
    withheld_fields: tuple[str, ...]
    generalised_fields: Mapping[str, str]
    audience: str
    organisation: str
    policy_version: str
    topic: str
    partition: int
    offset: int
    delivered_at: datetime
    record: Mapping[str, Any]
    decision: Mapping[str, str] = field(default_factory=dict)
    """The filter's decision behind this delivery, from its headers: ``rule``, ``reason``,
    ``lawful_basis`` and ``consent_state`` where the filter gave them."""

    @property
    def correction(self) -> tuple[str, str] | None:
        """(``AMENDED``/``RETRACTED``/``ERASED``, the corrected event's id) when this delivery
        corrects one the hub received before (POLICY.md principle 10), else None."""
        found = self.record.get("correction")
        if not isinstance(found, Mapping):
            return None
        return str(found["kind"]), str(found["corrects_event_id"])

    @property
    def child_name(self) -> str | None:
        """The child's name as delivered, or None when the hub may not see it or it was not recorded."""
        name = " ".join(part for part in (self.given_name, self.family_name) if part)
        return name or None

    def withheld(self, path: str) -> bool:
        """Whether policy withheld the field at ``path`` (or a field containing it)."""
        return any(path == p or path.startswith(p + ".") for p in self.withheld_fields)

    def to_json(self) -> dict[str, Any]:
        """The delivered copy in its JSON shape (dates ``YYYY-MM-DD``, times ISO 8601 with zone)."""
        return to_json(dict(self.record))  # type: ignore[no-any-return]


def position(msg: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset (librdkafka always sets them on one)."""
    return msg.topic() or "", msg.partition() or 0, msg.offset() or 0


def header_map(msg: Message) -> dict[str, str]:
    """A message's headers as text (a header without a value is left out)."""
    out: dict[str, str] = {}
    for item in msg.headers() or []:
        name, value = item[0], item[1]
        if isinstance(value, bytes):
            out[name] = value.decode("utf-8", "replace")
        elif isinstance(value, str):
            out[name] = value
    return out


def hub_reader(
    codecs: Codecs,
    verifier: Provenance | None = None,
    reveal: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> EnvelopeReader:
    """The envelope reader a hub uses: its provenance verifier, and ``reveal`` to open sealed
    fields (:class:`broker.security.ciphers.Revealer`; an erased field reads ``[erased]``)."""
    opener = (lambda event: (reveal(event), False)) if reveal is not None else None
    return EnvelopeReader(codecs.event, verifier, opener)


def verify(msg: Message, reader: EnvelopeReader, audience: str, organisation: str, topic: str) -> HubEvent:
    """Verify and read one delivery.

    Raises:
        DeliveryRejected: naming only its position, when it is not on this hub's topic, does not
            decode or lacks the filter's headers.
        DeliveryRefused: when its provenance fails.
    """
    at_topic, partition, offset = position(msg)
    where = f"{at_topic}[{partition}]@{offset}"
    if at_topic != topic:
        msg_ = f"Delivery at {where} is not on this hub's topic {topic}; it is not acknowledged."
        raise DeliveryRejected(msg_)
    headers = header_map(msg)
    read = reader.read(msg)
    if isinstance(read, Refusal):
        if read.rejection is not None:
            raise DeliveryRefused(read.rejection, headers.get("sgb.event_id"))
        text = f"Delivery at {where} cannot be decoded and is not acknowledged: {read.reason}"
        raise DeliveryRejected(text)
    event = read.event
    header_id, version = headers.get("sgb.event_id", ""), headers.get("sgb.policy_version", "")
    if not header_id or header_id != event["event_id"] or not version:
        text = (
            f"Delivery at {where} does not carry the filter's sgb.event_id and sgb.policy_version "
            "headers for its event; it is not acknowledged."
        )
        raise DeliveryRejected(text)
    child, source = event.get("child") or {}, event.get("source") or {}
    _, millis = msg.timestamp()
    return HubEvent(
        event_id=event["event_id"],
        event_type=event["event_type"],
        risk=event["risk"],
        occurred_at=event["occurred_at"],
        recorded_at=event["recorded_at"],
        agency=source.get("agency", ""),
        source_organisation=source.get("organisation", ""),
        source_organisation_name=source.get("organisation_name"),
        given_name=child.get("given_name"),
        family_name=child.get("family_name"),
        date_of_birth=child.get("date_of_birth"),
        nhs_number=child.get("nhs_number"),
        details=event.get("details") or {},
        narrative=event.get("narrative"),
        withheld_fields=tuple(event.get("withheld_fields") or ()),
        generalised_fields=dict(event.get("generalised_fields") or {}),
        audience=audience,
        organisation=organisation,
        policy_version=version,
        topic=at_topic,
        partition=partition,
        offset=offset,
        delivered_at=datetime.fromtimestamp(max(millis, 0) / 1000, UTC),
        record=event,
        decision={name: headers[f"sgb.{name}"] for name in DECISION_HEADERS if headers.get(f"sgb.{name}")},
    )
