"""What a delivery says of itself, in its Kafka headers."""

from __future__ import annotations

from consent.engine import Decision


def delivery_headers(decision: Decision) -> list[tuple[str, bytes]]:
    """What a delivery says of itself: its event and policy version, and the decision behind it
    (rule, reason, lawful basis, consent state), so that a hub can show why it received the
    event without reading the audit topic, which holds every organisation's decisions. A
    correction also names what it tells and the original it corrects (principle 10)."""
    headers = [
        ("sgb.event_id", decision.event_id.encode()),
        ("sgb.policy_version", decision.policy_version.encode()),
        ("sgb.rule", (decision.rule or "").encode()),
        ("sgb.reason", decision.reason.value.encode()),
    ]
    if decision.lawful_basis:
        headers.append(("sgb.lawful_basis", decision.lawful_basis.value.encode()))
    if decision.consent_state:
        headers.append(("sgb.consent_state", decision.consent_state.encode()))
    if decision.correction and decision.corrects_event_id:
        headers.append(("sgb.correction", decision.correction.encode()))
        headers.append(("sgb.corrects_event_id", decision.corrects_event_id.encode()))
    return headers
