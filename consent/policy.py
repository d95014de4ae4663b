"""The policy as data: audiences, prohibitions and rules, loaded from YAML and checked.

A rule reads like a consent provision: audience + purpose + tags + outcome. Conditions
come from a small typed vocabulary (no ``eval``). Rules for the same event type and
audience combine first-applicable, in file order (see :mod:`consent.engine`).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from consent.exceptions import PolicyError
from schemas import yaml_text
from schemas.loader import load as load_schema
from schemas.vocabulary import (
    HARD_LIMITS,
    Agency,
    Audience,
    ConsentState,
    EventType,
    LawfulBasis,
    Purpose,
    RedactionAction,
    Risk,
    Tag,
)
from schemas.walker import FieldNode, details_record_name, tag_plan

POLICY_DIR = Path(__file__).resolve().parent / "policies"
BASELINE = POLICY_DIR / "baseline.yaml"


class OrganisationSource(StrEnum):
    """How a rule finds the recipient organisation for its audience."""

    CHILD_LOCAL_AUTHORITY = "child_local_authority"
    CHILD_SCHOOL = "child_school"
    CHILD_GP_PRACTICE = "child_gp_practice"
    CHILD_INTEGRATED_CARE_BOARD = "child_integrated_care_board"
    CHILD_POLICE_FORCE = "child_police_force"
    FLAG_LOCAL_AUTHORITY = "flag_local_authority"
    REFERRER = "referrer"
    NATIONAL = "national"


#: POLICY.md's organisation key for each audience, used when a rule does not say.
DEFAULT_ORGANISATION: dict[Audience, OrganisationSource] = {
    Audience.MASH: OrganisationSource.CHILD_LOCAL_AUTHORITY,
    Audience.FAMILY_HELP: OrganisationSource.CHILD_LOCAL_AUTHORITY,
    Audience.SCHOOL_DSL: OrganisationSource.CHILD_SCHOOL,
    Audience.GP: OrganisationSource.CHILD_GP_PRACTICE,
    Audience.HEALTH_SAFEGUARDING: OrganisationSource.CHILD_INTEGRATED_CARE_BOARD,
    Audience.EMERGENCY_CARE: OrganisationSource.NATIONAL,
    Audience.POLICE_PPU: OrganisationSource.CHILD_POLICE_FORCE,
}


class Flag(StrEnum):
    CHILD_PROTECTION_PLAN = "CHILD_PROTECTION_PLAN"
    LOOKED_AFTER = "LOOKED_AFTER"
    ANY = "ANY"


class Condition(BaseModel):
    """One test on the event or the child's state; exactly one key is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    age_under: int | None = Field(default=None, ge=0, le=25)
    age_at_least: int | None = Field(default=None, ge=0, le=25)
    risk_in: tuple[Risk, ...] | None = None
    source_agency_in: tuple[Agency, ...] | None = None
    source_agency_not_in: tuple[Agency, ...] | None = None
    flag_active: Flag | None = None
    no_flag_active: Flag | None = None
    consent_state_in: tuple[ConsentState, ...] | None = None
    referrer_audience: Audience | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        set_keys = [k for k, v in self.__dict__.items() if v is not None]
        if len(set_keys) != 1:
            msg = f"a condition must set exactly one test, found {set_keys or 'none'}"
            raise ValueError(msg)
        return self

    @property
    def key(self) -> str:
        return next(k for k, v in self.__dict__.items() if v is not None)


class Rule(BaseModel):
    """Grants one audience a view of some event types."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = Field(min_length=1)
    event_types: tuple[EventType, ...] = Field(min_length=1)
    audience: Audience
    organisation: OrganisationSource | None = None
    conditions: tuple[Condition, ...] = ()
    grant: frozenset[Tag]
    #: A granted tag narrowed to named fields (dotted paths, ``child.nhs_number``): elsewhere the
    #: tag counts as not granted. Checked against the schema when the policy loads.
    only_fields: dict[Tag, frozenset[str]] = Field(default_factory=dict)
    #: Fields (dotted paths) never kept, whatever their tags; METADATA fields cannot be named.
    exclude_fields: frozenset[str] = frozenset()
    actions: dict[Tag, RedactionAction] = Field(default_factory=dict)
    requires_consent: bool = False
    purpose: Purpose | None = None
    override_on_significant_harm: bool = False
    lawful_basis: LawfulBasis

    @model_validator(mode="after")
    def _consent_needs_purpose(self) -> Rule:
        if self.requires_consent and self.purpose is None:
            msg = "a rule that requires consent must name its purpose"
            raise ValueError(msg)
        return self

    @property
    def organisation_source(self) -> OrganisationSource:
        return self.organisation or DEFAULT_ORGANISATION[self.audience]


class Prohibition(BaseModel):
    """Tags that must never reach some audiences, whatever a rule grants (deny overrides)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    description: str
    tags: frozenset[Tag]
    audiences: frozenset[Audience]


class IdentityThresholds(BaseModel):
    """When a demographic match links two identifiers (POLICY.md principle 11).

    Scores are Fellegi-Sunter match weights (log2 of the Bayes factor, prior included; see
    :mod:`consent.identity.scoring`). At or above ``automatic_link`` the filter links
    automatically; at or above ``review`` (and below the upper one) the pair is queued for a
    person (``sgb identity review``); below, nothing is recorded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    automatic_link: float = Field(default=12.0, ge=-60, le=60)
    review: float = Field(default=2.0, ge=-60, le=60)

    @model_validator(mode="after")
    def _ordered(self) -> IdentityThresholds:
        if self.review >= self.automatic_link:
            msg = (
                f"identity.review ({self.review}) must be below identity.automatic_link "
                f"({self.automatic_link}): between the two a person decides."
            )
            raise ValueError(msg)
        return self


class Policy(BaseModel):
    """A whole policy file. ``version_id`` is the declared version plus the content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: str
    audiences: tuple[Audience, ...] = tuple(Audience)
    prohibitions: tuple[Prohibition, ...] = ()
    rules: tuple[Rule, ...]
    identity: IdentityThresholds = IdentityThresholds()
    content_hash: str = Field(default="", exclude=True)

    @cached_property
    def version_id(self) -> str:
        return f"{self.version}+{self.content_hash[:12]}"

    @cached_property
    def rules_by_target(self) -> dict[tuple[EventType, Audience], tuple[Rule, ...]]:
        table: dict[tuple[EventType, Audience], list[Rule]] = {}
        for rule in self.rules:
            for event_type in rule.event_types:
                table.setdefault((event_type, rule.audience), []).append(rule)
        return {k: tuple(v) for k, v in table.items()}

    @cached_property
    def prohibited(self) -> dict[Audience, frozenset[Tag]]:
        """For each audience, the tags it may never receive: hard limits and prohibitions."""
        out: dict[Audience, set[Tag]] = {a: set() for a in Audience}
        for tag, allowed in HARD_LIMITS.items():
            for audience in Audience:
                if audience not in allowed:
                    out[audience].add(tag)
        for prohibition in self.prohibitions:
            for audience in prohibition.audiences:
                out[audience] |= prohibition.tags
        return {a: frozenset(t) for a, t in out.items()}


def check(policy: Policy) -> None:
    """Reject a policy that breaks a hard limit or contradicts itself, naming the rule."""
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.id in seen:
            msg = f"Rule {rule.id} is defined twice; rule ids must be unique."
            raise PolicyError(msg)
        seen.add(rule.id)
        _check_basis(rule)
        _check_fields(rule)
        for tag, allowed in HARD_LIMITS.items():
            if tag in rule.grant and rule.audience not in allowed:
                msg = (
                    f"Rule {rule.id} grants {tag} to {rule.audience}, which no rule may do "
                    f"(hard limit: {tag} goes only to {', '.join(sorted(allowed))})."
                    if tag is Tag.CONFIDENTIAL_ADDRESS
                    else f"Rule {rule.id} grants {tag} to {rule.audience}, which no rule may do (hard limit)."
                )
                raise PolicyError(msg)
        for prohibition in policy.prohibitions:
            clash = rule.grant & prohibition.tags
            if rule.audience in prohibition.audiences and clash:
                msg = (
                    f"Rule {rule.id} grants {', '.join(sorted(clash))} to {rule.audience}, "
                    f"which prohibition {prohibition.id} forbids."
                )
                raise PolicyError(msg)
        if rule.audience not in policy.audiences:
            msg = f"Rule {rule.id} names audience {rule.audience}, which the policy does not list under audiences."
            raise PolicyError(msg)


def _only_by_override(rule: Rule) -> bool:
    """Whether the rule can apply only through the significant-harm override: it requires
    consent, is lifted on significant harm, and a condition restricts it to that risk."""
    restricted = any(
        c.risk_in is not None and set(c.risk_in) <= {Risk.SIGNIFICANT_HARM} for c in rule.conditions
    )
    return rule.requires_consent and rule.override_on_significant_harm and restricted


def _check_basis(rule: Rule) -> None:
    """A consent basis must be one the rule can use (principle 4: an override is not consent)."""
    if rule.lawful_basis is LawfulBasis.CONSENT and _only_by_override(rule):
        msg = (
            f"Rule {rule.id} declares lawful basis CONSENT but applies only to significant harm, "
            "where the override lifts consent, so it can never rely on consent."
        )
        raise PolicyError(msg)
    if rule.lawful_basis is LawfulBasis.CONSENT and not rule.requires_consent:
        msg = f"Rule {rule.id} declares lawful basis CONSENT but does not require consent."
        raise PolicyError(msg)


def _check_fields(rule: Rule) -> None:
    """Named fields must exist for one of the rule's event types and fit what they name."""
    if not rule.only_fields and not rule.exclude_fields:
        return
    fields: dict[str, frozenset[str]] = {}
    for event_type in rule.event_types:
        for node in _field_nodes(event_type.value):
            fields[node.path] = node.tags
    for tag, paths in rule.only_fields.items():
        if tag not in rule.grant:
            msg = f"Rule {rule.id} narrows {tag} to named fields but does not grant {tag}."
            raise PolicyError(msg)
        for path in sorted(paths):
            if path not in fields:
                msg = f"Rule {rule.id} names field {path}, which none of its event types has."
                raise PolicyError(msg)
            if tag not in fields[path]:
                msg = f"Rule {rule.id} narrows {tag} to field {path}, which does not carry {tag}."
                raise PolicyError(msg)
    for path in sorted(rule.exclude_fields):
        if path not in fields:
            msg = f"Rule {rule.id} excludes field {path}, which none of its event types has."
            raise PolicyError(msg)
        if not fields[path] - {Tag.METADATA}:
            msg = f"Rule {rule.id} excludes field {path}, which is METADATA and always kept."
            raise PolicyError(msg)


@cache
def _field_nodes(event_type: str) -> tuple[FieldNode, ...]:
    """Every field of an event type's envelope, depth first, with its effective tags."""
    plan = tag_plan(load_schema("SafeguardingEvent"), details_record_name(event_type))
    return tuple(node for top in plan for node in top.walk())


def parse(text: str, origin: str = "<policy>") -> Policy:
    """Parse and check a policy from YAML text; errors name the file and the rule."""
    try:
        raw: Any = yaml_text.safe_load(text)  # the C loader where PyYAML has it
    except yaml_text.YAMLError as exc:
        msg = f"Policy {origin} is not valid YAML: {exc}."
        raise PolicyError(msg) from None
    if not isinstance(raw, dict):
        msg = f"Policy {origin} must be a mapping with name, version and rules."
        raise PolicyError(msg)
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        policy = Policy.model_validate({**raw, "content_hash": digest})
    except ValidationError as exc:
        raise PolicyError(_describe(exc, raw, origin)) from None
    check(policy)
    return policy


def load(path: Path = BASELINE) -> Policy:
    """Load and check a policy file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"Policy file {path} does not exist."
        raise PolicyError(msg) from None
    except OSError as exc:
        msg = f"Policy file {path} cannot be read: {exc.strerror or type(exc).__name__}."
        raise PolicyError(msg) from None
    return from_bytes(data, path)


def from_bytes(data: bytes, path: Path) -> Policy:
    """Check a policy file's bytes, already read (a watcher that digests what it read parses
    the same bytes, not a second read of a file that may have changed in between)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"Policy file {path} is not UTF-8 text (byte {exc.start} cannot be read)."
        raise PolicyError(msg) from None
    # As reading in text mode does, so a file's content hash does not depend on how it was read.
    return parse(text.replace("\r\n", "\n").replace("\r", "\n"), str(path))


def _describe(exc: ValidationError, raw: dict[str, Any], origin: str) -> str:
    first = exc.errors()[0]
    loc = list(first["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules") or []
        rule_id = rules[loc[1]].get("id", f"#{loc[1] + 1}") if loc[1] < len(rules) else f"#{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:]) or "rule"
        return f"Policy {origin}: rule {rule_id} is invalid at {field}: {first['msg']}."
    return f"Policy {origin} is invalid at {where}: {first['msg']}."
