"""``sgb policy evaluate``: the engine on one event, no Kafka, for a practitioner to read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemas
from consent import state_updates as status
from consent.engine import Decision, Engine
from consent.policy import Policy
from consent.state import ChildState
from schemas.exceptions import SgbError
from schemas.jsonform import event_from_json, record_from_json, to_json
from schemas.topics import TopicDeclaration
from schemas.validation import validate_event


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, failing with one sentence."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{what} file {path} does not exist."
        raise SgbError(msg) from None
    except json.JSONDecodeError as exc:
        msg = f"{what} file {path} is not valid JSON: {exc.msg} at line {exc.lineno}."
        raise SgbError(msg) from None


def state_from_json(raw: Any) -> ChildState:
    """Build a child's state from ``{"consents": [ConsentRecord...], "status": ChildStatus}``."""
    if not isinstance(raw, dict):
        msg = 'State must be an object with "consents" (a list of consent records) and "status" (a status record).'
        raise SgbError(msg)
    unknown = set(raw) - {"consents", "status"}
    if unknown:
        msg = f"State has unknown members: {', '.join(sorted(unknown))} (expected consents and status)."
        raise SgbError(msg)
    state = ChildState()
    try:
        if raw.get("status") is not None:
            state = status.apply_status(state, record_from_json("ChildStatus", raw["status"]))
        for consent in raw.get("consents") or []:
            state = status.apply_consent(state, record_from_json("ConsentRecord", consent))
    except schemas.SchemaError as exc:
        msg = f"State is invalid: {exc}"
        raise SgbError(msg) from None
    return state


def explain(
    policy: Policy, event_json: Any, state: ChildState, onboarded: TopicDeclaration, pseudonym_key: bytes
) -> dict[str, Any]:
    """Evaluate ``event_json`` and return what ``sgb policy evaluate`` prints."""
    try:
        event = event_from_json(event_json)
    except schemas.SchemaError as exc:
        msg = f"Event is invalid: {exc}"
        raise SgbError(msg) from None
    validate_event(event)  # exactly the filter's validation: InvalidEvent names the field, not its value
    organisations = onboarded.deliveries.organisations

    def is_onboarded(audience: str, org: str) -> bool:
        return org in organisations.get(str(audience), [])

    engine = Engine(policy, schemas.load("SafeguardingEvent"), pseudonym_key, is_onboarded)
    decisions = engine.decide(event, status.derive(event, state))
    return {
        "policy": policy.name,
        "policy_version": policy.version_id,
        "event_id": event["event_id"],
        "decisions": [_entry(d) for d in decisions],
    }


def _entry(decision: Decision) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "audience": decision.audience.value,
        "organisation": decision.organisation,
        "organisation_source": decision.organisation_source,
        "outcome": decision.outcome.value,
        "reason": decision.reason.value,
        "rule": decision.rule,
        "lawful_basis": decision.lawful_basis.value if decision.lawful_basis else None,
        "consent_state": decision.consent_state,
        "removed_fields": list(decision.removed_fields),
        "transformed_fields": list(decision.transformed_fields),
    }
    if decision.event is not None:
        entry["delivery_topic"] = decision.topic
        entry["event"] = to_json(decision.event)
    return entry
