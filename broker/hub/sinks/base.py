"""What every hub sink promises, and the errors it raises."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from broker.exceptions import SgbError

if TYPE_CHECKING:
    from broker.hub.delivered import HubEvent


class SinkError(SgbError):
    """A sink cannot be opened or used as configured; retrying will not help."""


class SinkUnavailable(SinkError):
    """A write did not become durable; it may succeed if retried.

    Args:
        message: one sentence saying what failed (never an event's contents).
        written: how many events from the start of the batch were durably written before
            the failure; the subscriber acknowledges those and retries the rest.
    """

    def __init__(self, message: str, written: int = 0) -> None:
        super().__init__(message)
        self.written = written


class Sink(Protocol):
    """Where a hub's people work.

    ``write`` returns only once every event it was given is durable (fsynced, committed,
    or acknowledged with a 2xx), and is idempotent by event id: writing an event the sink
    already holds changes nothing. It returns how many events were new.
    """

    kind: str

    def write(self, events: Sequence[HubEvent]) -> int: ...

    def close(self) -> None: ...


def event_json(event: HubEvent) -> str:
    """The delivered copy as one line of JSON (field names as in the ``.avsc`` files)."""
    return json.dumps(event.to_json(), sort_keys=True, ensure_ascii=False)


def row(event: HubEvent) -> dict[str, Any]:
    """The columns a database sink stores beside the event's JSON."""
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "risk": event.risk,
        "audience": event.audience,
        "organisation": event.organisation,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "delivered_at": event.delivered_at,
        "source_agency": event.agency,
        "source_organisation": event.source_organisation,
        "policy_version": event.policy_version,
        "topic": event.topic,
        "partition": event.partition,
        "offset": event.offset,
        "withheld_fields": json.dumps(list(event.withheld_fields)),
        "event": event_json(event),
    }


def check_owner(stored: tuple[str, str] | None, audience: str, organisation: str, where: str) -> None:
    """Refuse a store that already belongs to another hub organisation (one store per hub)."""
    if stored is not None and stored != (audience, organisation):
        msg = (
            f"{where} already holds deliveries for {stored[0]} {stored[1]}, not {audience} "
            f"{organisation}; use one store per hub organisation."
        )
        raise SinkError(msg)
