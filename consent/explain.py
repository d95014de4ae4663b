"""``sgb policy evaluate``: the engine on one event (or a file of them), no Kafka, for a
practitioner to read."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

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
    consents = raw.get("consents") or []
    if not isinstance(consents, list):
        msg = 'State is invalid: "consents" must be a list of consent records.'
        raise SgbError(msg)
    state = ChildState()
    try:
        if raw.get("status") is not None:
            state = status.apply_status(state, record_from_json("ChildStatus", raw["status"]))
        for consent in consents:
            state = status.apply_consent(state, record_from_json("ConsentRecord", consent))
    except schemas.SchemaError as exc:
        msg = f"State is invalid: {exc}"
        raise SgbError(msg) from None
    return state


class Explainer:
    """The engine set up once for many events: what ``sgb policy evaluate`` runs per event."""

    def __init__(self, policy: Policy, onboarded: TopicDeclaration, pseudonym_key: bytes) -> None:
        organisations = onboarded.deliveries.organisations

        def is_onboarded(audience: str, org: str) -> bool:
            return org in organisations.get(str(audience), [])

        self.policy = policy
        self.engine = Engine(policy, schemas.load("SafeguardingEvent"), pseudonym_key, is_onboarded)

    def explain(self, event_json: Any, state: ChildState) -> dict[str, Any]:
        """Evaluate one event against ``state``: one decision per candidate audience."""
        try:
            event = event_from_json(event_json)
        except schemas.SchemaError as exc:
            msg = f"Event is invalid: {exc}"
            raise SgbError(msg) from None
        validate_event(event)  # exactly the filter's validation: InvalidEvent names the field, not its value
        decisions = self.engine.decide(event, status.derive(event, state))
        return {
            "policy": self.policy.name,
            "policy_version": self.policy.version_id,
            "event_id": event["event_id"],
            "decisions": [_entry(d) for d in decisions],
        }


def explain(
    policy: Policy, event_json: Any, state: ChildState, onboarded: TopicDeclaration, pseudonym_key: bytes
) -> dict[str, Any]:
    """Evaluate ``event_json`` and return what ``sgb policy evaluate`` prints."""
    return Explainer(policy, onboarded, pseudonym_key).explain(event_json, state)


class Scenario(NamedTuple):
    """One line of ``--events``: the event and the state to evaluate it against, or why not."""

    line: int
    event_json: Any
    state: ChildState
    problem: str | None = None


def scenarios(lines: Iterable[str], default_state: ChildState) -> Iterator[Scenario]:
    """Read ``--events`` input: one JSON value a line, blank lines skipped.

    A line is an event, or ``{"event": {...}, "state": {...}}`` to evaluate it against a state
    of its own (``state`` as for ``--state``; without it, ``default_state``). A line that is
    not JSON or has a bad state yields its problem (naming the line, never its content).
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Scenario(number, None, default_state, f"Line {number} is not valid JSON: {exc.msg}.")
            continue
        if not (isinstance(raw, dict) and "event" in raw and set(raw) <= {"event", "state"}):
            yield Scenario(number, raw, default_state)
            continue
        try:
            state = state_from_json(raw["state"]) if raw.get("state") is not None else default_state
        except SgbError as exc:
            yield Scenario(number, None, default_state, f"Line {number}: {exc}")
            continue
        yield Scenario(number, raw["event"], state)


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
