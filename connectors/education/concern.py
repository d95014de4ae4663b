"""The JSON a school's safeguarding-recording system POSTs, and its mapping to an event.

Validated with pydantic at the edge (unknown members refused, enumerations as in the Avro
catalogue); mapped to ``SCHOOL_SAFEGUARDING_CONCERN`` for the school the bearer token
belongs to. Pure: no I/O.
"""

from __future__ import annotations

import json
from datetime import date
from enum import Enum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from connectors.runtime.event_builder import build_event
from connectors.runtime.records import SourceRecord
from schemas import SCHEMA_DIR


def _enum(name: str) -> Any:
    symbols = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))["symbols"]
    return Enum(name, {s: s for s in symbols}, type=str)


Risk = _enum("Risk")
SchoolStaffRole = _enum("SchoolStaffRole")
ConcernCategory = _enum("ConcernCategory")
SchoolConcernAction = _enum("SchoolConcernAction")
SendStatus = _enum("SendStatus")

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConcernChild(BaseModel):
    """The pupil: at least a UPN or an NHS number."""

    model_config = _STRICT
    upn: str | None = Field(None, max_length=13)
    nhs_number: str | None = Field(None, max_length=12)
    given_name: str | None = Field(None, max_length=100)
    family_name: str | None = Field(None, max_length=100)
    date_of_birth: date | None = None
    local_authority_code: str | None = Field(None, max_length=3)


class ConcernContact(BaseModel):
    """Who at the school partners contact about the concern."""

    model_config = _STRICT
    team: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=200)
    reference: str | None = Field(None, max_length=64)


class Concern(BaseModel):
    """A safeguarding concern recorded by a school."""

    model_config = _STRICT
    concern_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="The concern's id in the school's system; a resend with the same id is the same event.",
    )
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime | None = None
    risk: Risk = Risk("NEEDS_SUPPORT")  # type: ignore[valid-type]
    child: ConcernChild
    school_name: str | None = Field(None, max_length=200)
    recorded_by_role: SchoolStaffRole | None = None  # type: ignore[valid-type]
    concern_categories: list[ConcernCategory] = Field(default_factory=list, max_length=20)  # type: ignore[valid-type]
    disclosure_made: bool | None = None
    injuries_observed: bool | None = None
    mental_health_concern: bool | None = None
    send_status: SendStatus | None = None  # type: ignore[valid-type]
    actions_taken: list[SchoolConcernAction] = Field(default_factory=list, max_length=20)  # type: ignore[valid-type]
    description: str | None = Field(None, max_length=20000)
    contact: ConcernContact | None = None


def _value(item: Any) -> Any:
    return item.value if isinstance(item, Enum) else item


def concern_record(connector: str, urn: str, concern: Concern, body: bytes) -> SourceRecord:
    """The SourceRecord of one POST: its event id depends on the school and ``concern_id`` only."""
    return SourceRecord(
        connector,
        f"webhook school {urn}",
        f"school:{urn}",
        0,
        f"concern {concern.concern_id}",
        concern,
        body,
        "application/json",
    )


def map_concern(record: SourceRecord, urn: str) -> dict[str, Any]:
    """The SCHOOL_SAFEGUARDING_CONCERN event; raises MappingError if the pupil cannot be identified."""
    c: Concern = record.data
    child = c.child.model_dump()
    child["school_urn"] = urn
    details = {
        "recorded_by_role": _value(c.recorded_by_role),
        "concern_categories": [_value(x) for x in c.concern_categories],
        "disclosure_made": c.disclosure_made,
        "injuries_observed": c.injuries_observed,
        "mental_health_concern": c.mental_health_concern,
        "send_status": _value(c.send_status),
        "actions_taken": [_value(x) for x in c.actions_taken],
        "description": c.description,
    }
    source = {
        "agency": "EDUCATION",
        "organisation": urn,
        "organisation_name": c.school_name or f"School {urn}",
        "system": "school-webhook",
        "record_id": c.concern_id,
        "contact": c.contact.model_dump() if c.contact else None,
    }
    return build_event(
        record,
        event_type="SCHOOL_SAFEGUARDING_CONCERN",
        occurred_at=c.occurred_at,
        recorded_at=c.recorded_at,
        source=source,
        risk=_value(c.risk),
        child=child,
        details=details,
    )
