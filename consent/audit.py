"""The audit record of an event's decisions (POLICY.md principle 7), and turning a share into a withhold."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from consent.engine import Decision
from consent.identity import Resolution
from schemas.vocabulary import Outcome, Reason


def withhold(decision: Decision, reason: Reason) -> Decision:
    """The same decision, withheld for ``reason``: its delivered copy dropped, and no lawful
    basis, since nothing was shared (principle 7)."""
    return replace(decision, outcome=Outcome.WITHHOLD, reason=reason, event=None, lawful_basis=None)


def decision_entry(decision: Decision) -> dict[str, Any]:
    """One decision's part of its event's audit record (an AuditEntry; principle 7): who was
    the candidate, the outcome and why, and the names of the fields removed or transformed."""
    return {
        "audience": decision.audience.value,
        "organisation": decision.organisation,
        "outcome": decision.outcome.value,
        "reason": None if decision.reason is Reason.GRANTED else decision.reason.value,
        "rule": decision.rule,
        "lawful_basis": decision.lawful_basis.value if decision.lawful_basis else None,
        "consent_state": decision.consent_state,
        "removed_fields": list(decision.removed_fields),
        "transformed_fields": list(decision.transformed_fields),
        "delivery_topic": decision.topic,
        "organisation_source": decision.organisation_source,
        **correction_fields(decision),
    }


def event_fields(
    event_id: str,
    event_type: str,
    policy_version: str,
    decided_at: datetime | int,
    identity: Resolution | None = None,
) -> dict[str, Any]:
    """The part of an event's audit record (an AuditRecord) that all its decisions share;
    ``decided_at`` as a datetime or epoch milliseconds. With ``identity``, the kind of
    identifier the event named the child by and the links the decisions relied on
    (principle 11): rule and band, never the demographics."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "policy_version": policy_version,
        "decided_at": decided_at,
        "child_identifier": identity.identifier_kind if identity is not None else None,
        "identity_links": identity.audit_links() if identity is not None else None,
    }


def audit_record(
    decisions: list[Decision], decided_at: datetime | int, identity: Resolution | None = None
) -> dict[str, Any]:
    """The AuditRecord of one event's decisions, without its chain fields (tools and tests:
    the filter writes the same record in pieces, :mod:`broker.wire.audit_codec`)."""
    first = decisions[0]
    return {
        **event_fields(first.event_id, first.event_type, first.policy_version, decided_at, identity),
        "decisions": [decision_entry(d) for d in decisions],
    }


def correction_fields(decision: Decision) -> dict[str, Any]:
    """The audit fields of a decision on a correction (principle 10): what the recipient was
    told and which original it received; both null for an ordinary event's decision."""
    return {"correction": decision.correction, "corrects_event_id": decision.corrects_event_id}
