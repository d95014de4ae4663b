"""Serdes for the project's record types, by name, on one registry."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import schemas
from broker.registry import SchemaRegistry
from broker.serde import AvroSerde
from schemas.jsonform import details_branch

NAMESPACE = "uk.sgb"


def record_serde(registry: SchemaRegistry, name: str) -> AvroSerde:
    """A serde for the top-level record ``name`` (subject: its full name)."""
    return AvroSerde(registry, f"{NAMESPACE}.{name}", schemas.load(name))


class EventSerde:
    """The SafeguardingEvent serde: selects the details branch from the event type."""

    __slots__ = ("_serde",)

    def __init__(self, registry: SchemaRegistry) -> None:
        self._serde = record_serde(registry, "SafeguardingEvent")

    @property
    def schema_id(self) -> int:
        return self._serde.schema_id

    def encode(self, event: dict[str, Any]) -> bytes:
        """Encode an event; its details are written as the branch its event_type names."""
        details = event.get("details")
        if isinstance(details, dict) and "-type" not in details:
            branch = f"{NAMESPACE}.{details_branch(str(event.get('event_type')))}"
            event = {**event, "details": {**details, "-type": branch}}
        return self._serde.encode(event)

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode a framed event."""
        return self._serde.decode(data)


class Codecs:
    """Every serde a component needs, registered lazily on first use.

    Args:
        registry: the schema registry in use.
    """

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    @cached_property
    def event(self) -> EventSerde:
        return EventSerde(self.registry)

    @cached_property
    def audit(self) -> AvroSerde:
        return record_serde(self.registry, "AuditDecision")

    @cached_property
    def dead_letter(self) -> AvroSerde:
        return record_serde(self.registry, "DeadLetter")

    @cached_property
    def consent(self) -> AvroSerde:
        return record_serde(self.registry, "ConsentRecord")

    @cached_property
    def status(self) -> AvroSerde:
        return record_serde(self.registry, "ChildStatus")
