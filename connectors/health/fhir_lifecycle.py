"""A FHIR resource's versions and status as the lifecycle of the event it maps to.

The event id of a FHIR-derived event is the resource's identity, not the file or the
position it was read from: the connector, the publishing organisation, and the resource's
type and logical id (``Encounter/enc-1``), or, for a resource without a logical id (a
transaction Bundle's ``urn:uuid`` entry), its first business identifier (``system|value``).
A re-send of the same resource, in any file, is the same event id (the filter decides it
once). Then, as :mod:`connectors.health.lifecycle` says for every source:

* the first version (``meta.versionId`` absent or ``1``) is the event, with that id;
* a later version (``meta.versionId`` 2 or more) is an ``AMENDED`` correction of it, with the
  full new content, its own id derived from the version (a re-send is the same);
* ``entered-in-error`` (any status it maps from: a Condition's verification status), or
  ``cancelled`` for an Encounter or an Observation, is a ``RETRACTED`` correction of it.

A resource first read at a later version is an amendment of an event the filter never
decided, which the filter decides as that event (:func:`consent.corrections.as_original`).
A resource with neither a logical id nor an identifier keeps the position's event id and
cannot be corrected later. A server whose version ids are not numbers gives no way to tell
a first version from a later one: each is taken as the first, so a change reaches the
filter as a re-send and is skipped (said in the README).
"""

from __future__ import annotations

from typing import Any

from connectors.health.fhir_model import Condition, Resource
from connectors.health.lifecycle import Step, with_lifecycle
from connectors.runtime.corrections import derived_event_id
from connectors.runtime.records import SourceRecord, uuid5_text

#: The statuses that say a resource should not have been sent, by resource type.
RETRACTING_STATUSES: dict[str, frozenset[str]] = {
    "Encounter": frozenset({"entered-in-error", "cancelled"}),
    "Observation": frozenset({"entered-in-error", "cancelled"}),
}
ENTERED_IN_ERROR = frozenset({"entered-in-error"})


def retracted(res: Resource) -> bool:
    """Whether the resource's status says it was entered in error (or the encounter cancelled)."""
    if isinstance(res, Condition):
        return res.verification == "entered-in-error"
    status = getattr(res, "status", None)
    return status in RETRACTING_STATUSES.get(res.resourceType, ENTERED_IN_ERROR)


def resource_step(res: Resource) -> Step:
    """What this version of the resource does to its event."""
    if retracted(res):
        return Step.CANCEL_START
    version = res.meta.versionId if res.meta else None
    return Step.AMEND if version is not None and version.isdigit() and int(version) > 1 else Step.START


def resource_identity(res: Resource) -> str | None:
    """``Type/id``, else ``Type?identifier=system|value``; None when the resource has neither."""
    if res.id:
        return res.label
    found = next((i for i in res.identifier if i.value), None)
    return f"{res.resourceType}?identifier={found.system or ''}|{found.value}" if found else None


def with_resource_lifecycle(
    event: dict[str, Any], record: SourceRecord, res: Resource, organisation: str
) -> dict[str, Any]:
    """The mapped event with the resource's event id, or as a correction of it (module doc)."""
    identity = resource_identity(res)
    if identity is None:
        return event
    original = derived_event_id(record.connector, f"fhir|{organisation}|{identity}")
    step = resource_step(res)
    version = (res.meta.versionId if res.meta else None) or ""
    own = uuid5_text(f"{original}|{step.value}|{version if step is Step.AMEND else ''}")
    return with_lifecycle(event, step, original, own)
