"""``sgb policy check``: a policy that breaks a hard limit or names unknown things is rejected."""

from __future__ import annotations

import pytest

from consent.exceptions import PolicyError
from consent.policy import BASELINE, load, parse

RULE = """
name: t
version: "1"
rules:
  - id: {rule_id}
    description: test
    event_types: [{event_type}]
    audience: {audience}
    grant: [{grant}]
    lawful_basis: PUBLIC_TASK_SAFEGUARDING
"""


def policy(
    rule_id: str = "r1",
    event_type: str = "DOMESTIC_ABUSE_INCIDENT",
    audience: str = "SCHOOL_DSL",
    grant: str = "NAME",
) -> str:
    return RULE.format(rule_id=rule_id, event_type=event_type, audience=audience, grant=grant)


def test_baseline_loads_and_has_a_version_with_its_content_hash() -> None:
    baseline = load(BASELINE)
    assert baseline.version_id.startswith(baseline.version + "+")
    assert len(baseline.version_id.split("+")[1]) == 12


def test_version_changes_when_content_changes() -> None:
    assert parse(policy()).version_id != parse(policy(grant="NAME, DATE_OF_BIRTH")).version_id


def test_confidential_address_to_a_school_is_rejected_naming_the_rule() -> None:
    with pytest.raises(PolicyError, match=r"Rule leaky-school grants CONFIDENTIAL_ADDRESS to SCHOOL_DSL"):
        parse(policy(rule_id="leaky-school", grant="CONFIDENTIAL_ADDRESS"))


def test_sexual_health_to_a_school_is_rejected_naming_the_rule() -> None:
    with pytest.raises(PolicyError, match=r"Rule sh-school grants SEXUAL_HEALTH to SCHOOL_DSL"):
        parse(policy(rule_id="sh-school", grant="SEXUAL_HEALTH"))


def test_confidential_address_to_police_is_allowed() -> None:
    parse(policy(audience="POLICE_PPU", grant="CONFIDENTIAL_ADDRESS"))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("grant", "NAMES", "rule r1 is invalid at grant"),
        ("audience", "SCHOOL", "rule r1 is invalid at audience"),
        ("event_type", "DOMESTIC_ABUSE", "rule r1 is invalid at event_types"),
    ],
)
def test_unknown_names_are_rejected(field: str, value: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        parse(policy(**{field: value}))


def test_duplicate_rule_ids_are_rejected() -> None:
    text = policy() + policy().split("rules:\n")[1]
    with pytest.raises(PolicyError, match="Rule r1 is defined twice"):
        parse(text)


def test_conditions_are_typed_not_evaluated() -> None:
    text = policy().replace("    grant:", "    conditions:\n      - python: __import__('os')\n    grant:")
    with pytest.raises(PolicyError, match="conditions"):
        parse(text)
