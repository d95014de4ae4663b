"""The audit record of a decision (POLICY.md principle 7), and turning a share into a withhold."""

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


def audit_record(decision: Decision, now: datetime, identity: Resolution | None = None) -> dict[str, Any]:
    """The AuditDecision record for one decision (principle 7); with ``identity``, the kind of
    identifier the event used and the links the decision relied on (principle 11)."""
    record: dict[str, Any] = {
        "event_id": decision.event_id,
        "event_type": decision.event_type,
        "audience": decision.audience.value,
        "organisation": decision.organisation,
        "outcome": decision.outcome.value,
        "reason": None if decision.reason is Reason.GRANTED else decision.reason.value,
        "rule": decision.rule,
        "lawful_basis": decision.lawful_basis.value if decision.lawful_basis else None,
        "consent_state": decision.consent_state,
        "policy_version": decision.policy_version,
        "removed_fields": list(decision.removed_fields),
        "transformed_fields": list(decision.transformed_fields),
        "decided_at": now,
        "delivery_topic": decision.topic,
        "organisation_source": decision.organisation_source,
        **correction_fields(decision),
    }
    if identity is not None:
        record["child_identifier"] = identity.identifier_kind
        record["identity_links"] = identity.audit_links()
    return record


def correction_fields(decision: Decision) -> dict[str, Any]:
    """The audit fields of a decision on a correction (principle 10): what the recipient was
    told and which original it received; both null for an ordinary event's decision."""
    return {"correction": decision.correction, "corrects_event_id": decision.corrects_event_id}
