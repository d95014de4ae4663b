"""The decision engine: (event, child state, policy) -> one decision per candidate audience.

Pure: no Kafka, no clock, no I/O. ``sgb policy evaluate`` and the filter service run
this same code.

How rules combine (named, not an accident of evaluation order):
1. Every audience the policy lists is a candidate, and gets exactly one decision.
2. First-applicable: the rules for (event type, audience) are tried in file order; the
   first whose conditions hold and whose consent requirement is met (or lifted by
   significant harm) decides.
3. Deny overrides at field level: hard limits and the policy's prohibitions remove
   fields whatever the deciding rule grants.
4. Fail closed: an organisation that cannot be resolved or is not onboarded, or a
   redaction that fails, withholds the delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from consent.combination import MAX_COMBINATIONS, Choice, Choices, event_date, holds
from consent.exceptions import EventInvalid, RedactionError
from consent.merges import is_merge
from consent.policy import DEFAULT_ORGANISATION, OrganisationSource, Policy, Rule
from consent.redaction import Compiler, Plan, Redactor
from consent.state import ChildState
from schemas import reference
from schemas.topics import delivery_topic
from schemas.vocabulary import (
    NO_RECORD,
    Audience,
    ConsentState,
    EventType,
    LawfulBasis,
    Outcome,
    Purpose,
    Reason,
    Risk,
    Tag,
)
from schemas.walker import details_record_name


@dataclass(frozen=True, slots=True)
class Decision:
    """One (event, audience) decision, share or withhold, with everything the audit needs."""

    event_id: str
    event_type: str
    audience: Audience
    organisation: str | None
    outcome: Outcome
    reason: Reason
    rule: str | None
    lawful_basis: LawfulBasis | None
    consent_state: str
    policy_version: str
    removed_fields: tuple[str, ...] = ()
    transformed_fields: tuple[str, ...] = ()
    event: dict[str, Any] | None = None
    #: Principle 9: where the organisation came from (:class:`OrganisationFrom`); None when
    #: it could not be resolved.
    organisation_source: str | None = None
    #: Principle 10: on the decision for a correction, what the recipient is told
    #: (``AMENDED``, ``RETRACTED``, ``ERASED``) and the id of the original it received.
    correction: str | None = None
    corrects_event_id: str | None = None

    @property
    def topic(self) -> str | None:
        """The logical delivery topic of a share."""
        if self.outcome is Outcome.SHARE and self.organisation:
            return delivery_topic(self.audience, self.organisation)
        return None


class OrganisationFrom(StrEnum):
    """Principle 9: where a decision's organisation came from."""

    EVENT = "EVENT"  # the event names it (the child's school, GP or LA; the referrer)
    RECORDED = "RECORDED"  # the filter's record of the child (or of the child's active flag)
    NATIONAL = "NATIONAL"  # the audience has one national organisation


Onboarded = Callable[[Audience, str], bool]
Reference = Callable[[str, str], str | None]  # (kind "police_force"|"icb", la_code) -> code


def _no_reference(kind: str, la_code: str) -> str | None:
    if kind == "police_force":
        return reference.police_force_for(la_code)
    return reference.icb_for(la_code)


class Engine:
    """Runs a policy. Holds only caches derived from its inputs; no I/O.

    Args:
        policy: the loaded, checked policy.
        schema: the envelope schema (JSON, tags included).
        pseudonym_key: secret for PSEUDONYMISE.
        onboarded: whether an (audience, organisation) has a delivery topic.
        reference: local authority -> police force / integrated care board lookup.
        combinations: most combinations whose choices are kept (:mod:`consent.combination`);
            0 decides every event from the rules.
    """

    def __init__(
        self,
        policy: Policy,
        schema: dict[str, Any],
        pseudonym_key: bytes,
        onboarded: Onboarded,
        reference: Reference = _no_reference,
        combinations: int = MAX_COMBINATIONS,
    ) -> None:
        self.policy = policy
        self._compiler = Compiler(schema)
        self._redactor = Redactor(pseudonym_key)
        self._onboarded = onboarded
        self._reference = reference
        self._plans: dict[tuple[str, str], Plan] = {}
        self._secrets: dict[int, frozenset[str]] = {}
        self._combinations = Choices(policy, combinations)

    def combination_hits(self) -> tuple[int, int]:
        """(events whose choices were reused, events whose choices were made) since the start."""
        return self._combinations.hits, self._combinations.misses

    def delivery_key(self, child_key: str, audience: str, organisation: str) -> str:
        """The message key of a delivery: the child's key pseudonymised for that recipient, so a
        recipient's copies stay in order without it learning another agency's identifier."""
        return self._redactor.pseudonym(child_key, f"{audience}:{organisation}")

    def decide(self, event: Mapping[str, Any], state: ChildState) -> list[Decision]:
        """Decide every candidate audience for ``event``; raises :class:`EventInvalid` if it
        cannot be evaluated (the caller dead-letters it). A source's merge is shared with no
        one: every audience withheld, ``no_rule``, no rule consulted (:mod:`consent.merges`)."""
        event_type, risk = _validate(event)
        if is_merge(event):
            return [self._no_rule(event, audience) for audience in self.policy.audiences]
        choices = self._choices(event, event_type, risk, state)
        return [
            self._decide_one(event, event_type, choice, state, audience)
            for choice, audience in zip(choices, self.policy.audiences, strict=True)
        ]

    def _no_rule(
        self,
        event: Mapping[str, Any],
        audience: Audience,
        consent_state: str = NO_RECORD,
        organisation: tuple[str | None, str | None] = (None, None),
    ) -> Decision:
        """Withheld: no rule grants this audience the event (a merge: no rule is consulted)."""
        return Decision(
            event_id=str(event["event_id"]),
            event_type=str(event["event_type"]),
            audience=audience,
            organisation=organisation[0],
            organisation_source=organisation[1],
            outcome=Outcome.WITHHOLD,
            reason=Reason.NO_RULE,
            rule=None,
            lawful_basis=None,
            consent_state=consent_state,
            policy_version=self.policy.version_id,
        )

    def _choices(
        self, event: Mapping[str, Any], event_type: EventType, risk: Risk, state: ChildState
    ) -> tuple[Choice, ...]:
        """Every audience's choice: once per combination of what the rules read (:mod:`consent.combination`)."""
        key = self._combinations.combination(event, event_type, risk, state)
        found = None if key is None else self._combinations.get(key)
        if found is None:
            found = tuple(self._choose_for(event, event_type, risk, state, a) for a in self.policy.audiences)
            if key is not None:
                self._combinations.put(key, found)
        return found

    def _choose_for(
        self,
        event: Mapping[str, Any],
        event_type: EventType,
        risk: Risk,
        state: ChildState,
        audience: Audience,
    ) -> Choice:
        # Principle 7: the consent covering this audience and purpose, never another audience's.
        consent = state.consent_state(audience, Purpose.FAMILY_HELP)
        rules = self.policy.rules_by_target.get((event_type, audience), ())
        if not rules:
            return Choice(consent, True, None, None, Reason.NO_RULE, None, _default_source(audience))
        chosen, lawful_basis, reason, failed_rule = self._choose(rules, event, risk, state, audience)
        source = (chosen or rules[0]).organisation_source
        return Choice(consent, False, chosen, lawful_basis, reason, failed_rule, source)

    def _decide_one(
        self,
        event: Mapping[str, Any],
        event_type: EventType,
        choice: Choice,
        state: ChildState,
        audience: Audience,
    ) -> Decision:
        consent = choice.consent
        base: dict[str, Any] = {
            "event_id": event["event_id"],
            "event_type": event_type.value,
            "audience": audience,
            "policy_version": self.policy.version_id,
            "consent_state": consent,
        }
        if choice.no_rule:
            found = self._organisation(choice.source, event, state)
            return self._no_rule(event, audience, consent, found)
        chosen, lawful_basis = choice.rule, choice.lawful_basis
        if chosen is None:
            org, source = self._organisation(choice.source, event, state)
            return Decision(
                **base,
                organisation=org,
                organisation_source=source,
                outcome=Outcome.WITHHOLD,
                reason=choice.reason,
                rule=choice.failed_rule,
                lawful_basis=None,
            )
        # Principle 7: a withhold shares nothing, so it relies on no lawful basis.
        withhold: dict[str, Any] = {"outcome": Outcome.WITHHOLD, "rule": chosen.id, "lawful_basis": None}
        org, source = self._organisation(choice.source, event, state)
        base["organisation_source"] = source
        if not org:
            return Decision(**base, organisation=None, reason=Reason.RECIPIENT_UNKNOWN, **withhold)
        if not self._onboarded(audience, org):
            return Decision(**base, organisation=org, reason=Reason.RECIPIENT_NOT_ONBOARDED, **withhold)
        try:
            plan = self._plan(chosen, event_type)
            redacted = self._redactor.apply(
                plan, dict(event), recipient=f"{audience}:{org}", at=event_date(event)
            )
        except RedactionError:
            return Decision(**base, organisation=org, reason=Reason.REDACTION_FAILED, **withhold)
        secret = self._secrets.get(id(plan))
        if secret is None:
            secret = self._secrets[id(plan)] = frozenset(_secret_paths(plan))
        copy = redacted.record
        copy["withheld_fields"] = [p for p in redacted.removed if p not in secret]
        copy["generalised_fields"] = redacted.generalised
        return Decision(
            **base,
            organisation=org,
            outcome=Outcome.SHARE,
            reason=Reason.GRANTED,
            rule=chosen.id,
            lawful_basis=lawful_basis,
            removed_fields=tuple(redacted.removed),
            transformed_fields=tuple(redacted.transformed) + tuple(redacted.generalised),
            event=copy,
        )

    def notice(self, event: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """A metadata-only copy of ``event`` (every field not tagged ``METADATA`` removed) and
        the removed paths: the content of a retraction or erasure notice, which tells a
        recipient of the original only which event is withdrawn. Raises :class:`EventInvalid`."""
        event_type, _ = _validate(event)
        plan = self._plans.get(("", event_type.value))
        if plan is None:
            plan = self._plans["", event_type.value] = self._compiler.compile(
                frozenset({Tag.METADATA}), frozenset(), {}, details_record_name(event_type.value)
            )
        try:
            redacted = self._redactor.apply(plan, dict(event), recipient="notice", at=None)
        except RedactionError as exc:
            raise EventInvalid(str(exc)) from None
        copy = redacted.record
        copy["withheld_fields"], copy["generalised_fields"] = [], {}
        return copy, tuple(redacted.removed)

    def pseudonym(self, value: str, recipient: str) -> str:
        """The keyed pseudonym the engine's redactor gives ``value`` for one recipient."""
        return self._redactor.pseudonym(value, recipient)

    def _choose(
        self,
        rules: tuple[Rule, ...],
        event: Mapping[str, Any],
        risk: Risk,
        state: ChildState,
        audience: Audience,
    ) -> tuple[Rule | None, LawfulBasis | None, Reason, str | None]:
        reason, failed = Reason.CONDITION_NOT_MET, rules[0].id
        for rule in rules:
            if not all(holds(c, event, risk, state, audience) for c in rule.conditions):
                continue
            if not rule.requires_consent:
                return rule, rule.lawful_basis, Reason.GRANTED, None
            if rule.override_on_significant_harm and risk is Risk.SIGNIFICANT_HARM:
                return rule, LawfulBasis.SAFEGUARDING_OVERRIDE, Reason.GRANTED, None
            assert rule.purpose is not None
            if state.consent_state(audience, rule.purpose) == ConsentState.GIVEN:
                return rule, rule.lawful_basis, Reason.GRANTED, None
            if reason is Reason.CONDITION_NOT_MET:
                reason, failed = Reason.CONSENT_NOT_GIVEN, rule.id
        return None, None, reason, failed

    def _plan(self, rule: Rule, event_type: EventType) -> Plan:
        key = (rule.id, event_type.value)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._compiler.compile(
                rule.grant,
                self.policy.prohibited[rule.audience],
                rule.actions,
                details_record_name(event_type.value),
                only=rule.only_fields,
                exclude=rule.exclude_fields,
            )
            self._plans[key] = plan
        return plan

    def _organisation(
        self, source: OrganisationSource, event: Mapping[str, Any], state: ChildState
    ) -> tuple[str | None, str | None]:
        """The organisation for a rule's source, and where it came from (principle 9): the one
        the event names, failing that the one the filter recorded for the child; never guessed."""
        child = event.get("child") or {}
        if source is OrganisationSource.NATIONAL:
            return "national", OrganisationFrom.NATIONAL
        if source is OrganisationSource.REFERRER:
            details = event.get("details") or {}
            return _found(details.get("referrer_organisation"), OrganisationFrom.EVENT)
        if source is OrganisationSource.FLAG_LOCAL_AUTHORITY:
            flag = state.active_flag("ANY")
            return _found(flag.local_authority_code if flag else None, OrganisationFrom.RECORDED)
        if source is OrganisationSource.CHILD_SCHOOL:
            return _named_or_recorded(child.get("school_urn"), state.school_urn)
        if source is OrganisationSource.CHILD_GP_PRACTICE:
            return _named_or_recorded(child.get("gp_practice_ods"), state.gp_practice_ods)
        la, la_from = _named_or_recorded(child.get("local_authority_code"), state.local_authority_code)
        if source is OrganisationSource.CHILD_LOCAL_AUTHORITY:
            return la, la_from
        kind = "icb" if source is OrganisationSource.CHILD_INTEGRATED_CARE_BOARD else "police_force"
        return _found(self._reference(kind, la) if la else None, la_from)


def _found(org: str | None, source: str | None) -> tuple[str | None, str | None]:
    return (org, source) if org else (None, None)


def _named_or_recorded(named: str | None, recorded: str | None) -> tuple[str | None, str | None]:
    if named:
        return named, OrganisationFrom.EVENT
    return _found(recorded, OrganisationFrom.RECORDED)


def _default_source(audience: Audience) -> OrganisationSource:
    return DEFAULT_ORGANISATION[audience]


def _secret_paths(plan: Plan) -> set[str]:
    out: set[str] = set()
    for fp in plan:
        if fp.secret_existence:
            out.add(fp.path)
        out |= _secret_paths(fp.sub)
    return out


def _validate(event: Mapping[str, Any]) -> tuple[EventType, Risk]:
    try:
        event_type = EventType(event["event_type"])
        risk = Risk(event["risk"])
    except (KeyError, ValueError, TypeError):
        msg = "Event has no valid event_type or risk."
        raise EventInvalid(msg) from None
    if not event.get("event_id"):
        msg = "Event has no event_id."
        raise EventInvalid(msg)
    if not isinstance(event.get("child"), Mapping) or not isinstance(event.get("details"), Mapping):
        msg = f"Event {event['event_id']} has no child or no details."
        raise EventInvalid(msg)
    return event_type, risk
