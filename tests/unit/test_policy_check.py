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


OVERRIDE_ONLY = """
name: t
version: "1"
rules:
  - id: F3-mash-significant-harm
    description: test
    event_types: [SCHOOL_SAFEGUARDING_CONCERN]
    audience: MASH
    conditions:
      - risk_in: [SIGNIFICANT_HARM]
    grant: [NAME]
    requires_consent: true
    purpose: FAMILY_HELP
    override_on_significant_harm: true
    lawful_basis: {basis}
"""


def test_a_consent_basis_on_a_rule_that_only_applies_by_override_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"^Rule F3-mash-significant-harm declares lawful basis CONSENT"):
        parse(OVERRIDE_ONLY.format(basis="CONSENT"))
    parse(OVERRIDE_ONLY.format(basis="SAFEGUARDING_OVERRIDE"))  # the same rule, truthful


def test_a_consent_basis_without_requiring_consent_is_refused() -> None:
    text = policy(rule_id="no-consent").replace("PUBLIC_TASK_SAFEGUARDING", "CONSENT")
    with pytest.raises(
        PolicyError, match=r"^Rule no-consent declares lawful basis CONSENT but does not require"
    ):
        parse(text)


def test_a_grant_a_prohibition_forbids_is_refused_naming_the_rule() -> None:
    text = (
        'name: t\nversion: "1"\nprohibitions:\n  - id: no-health\n    description: d\n'
        "    tags: [HEALTH]\n    audiences: [SCHOOL_DSL]\n"
        + policy(rule_id="health-school", grant="HEALTH").split("rules:", 1)[0]
    )
    text += "rules:" + policy(rule_id="health-school", grant="HEALTH").split("rules:", 1)[1]
    with pytest.raises(
        PolicyError, match=r"^Rule health-school grants HEALTH to SCHOOL_DSL, which prohibition no-health"
    ):
        parse(text)


def with_fields(
    extra: str, grant: str = "IDENTIFIER, NAME", event_type: str = "CHILD_PROTECTION_PLAN"
) -> str:
    return policy(rule_id="f2", event_type=event_type, audience="EMERGENCY_CARE", grant=grant) + extra


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "    only_fields:\n      IDENTIFIER: [child.nhs_numbr]\n",
            r"^Rule f2 names field child\.nhs_numbr, which none",
        ),
        (
            "    only_fields:\n      IDENTIFIER: [child.given_name]\n",
            r"^Rule f2 narrows IDENTIFIER to field child\.given_name, which does not carry",
        ),
        (
            "    only_fields:\n      CONTACT: [child.address]\n",
            r"^Rule f2 narrows CONTACT to named fields but does not grant",
        ),
        (
            "    exclude_fields: [details.injury_intent]\n",
            r"^Rule f2 excludes field details\.injury_intent, which none",
        ),
        (
            "    exclude_fields: [details.start_date]\n",
            r"^Rule f2 excludes field details\.start_date, which is METADATA",
        ),
    ],
)
def test_field_names_are_checked_against_the_schema_when_the_policy_loads(extra: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse(with_fields(extra))


def test_named_fields_that_exist_load() -> None:
    loaded = parse(
        with_fields(
            "    only_fields:\n      IDENTIFIER: [child.nhs_number]\n    exclude_fields: [child.family_name]\n"
        )
    )
    assert loaded.rules[0].only_fields["IDENTIFIER"] == frozenset({"child.nhs_number"})  # type: ignore[index]
