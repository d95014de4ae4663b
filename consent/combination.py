"""Which rule decides an audience, computed once per combination of what the rules read.

For one audience, the engine's choice (the consent it reports, the deciding rule or the one
that failed, the lawful basis, the reason and where the organisation is to come from)
depends only on: the event type and risk, the policy's rules, and whatever the rules'
conditions read: the child's age at the event, the source agency, the referrer's audience,
the active flags and the consent in force for each (audience, purpose). :func:`combination`
names exactly those inputs, so :class:`Choices` can share one choice between events that
agree on all of them. What varies with each event (the organisation itself, whether it is
onboarded, the redacted copy) is never shared: the engine works it out per event.

A condition this module does not know how to name makes :func:`combination` return None and
the engine decides without the cache (fail closed: never share a choice on an input the key
omits).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from consent.policy import Condition, OrganisationSource, Policy, Rule
from consent.redaction import age_in_years
from consent.state import ChildState
from schemas.vocabulary import Audience, EventType, LawfulBasis, Purpose, Reason, Risk

#: Every condition key :func:`holds` reads, with the input it reads. A key not
#: listed here disables the cache for the policy.
NAMED_CONDITIONS = frozenset(
    {
        "age_under",
        "age_at_least",
        "risk_in",
        "source_agency_in",
        "source_agency_not_in",
        "flag_active",
        "no_flag_active",
        "consent_state_in",
        "referrer_audience",
    }
)

#: Most combinations kept; the oldest goes first. A combination costs a few hundred bytes.
MAX_COMBINATIONS = 4096


@dataclass(frozen=True, slots=True)
class Choice:
    """One audience's choice, before its organisation is resolved for the event in hand."""

    consent: str
    #: True when no rule names the (event type, audience): withheld, ``no_rule``.
    no_rule: bool
    rule: Rule | None
    lawful_basis: LawfulBasis | None
    reason: Reason
    #: The rule whose failure the audit names when nothing was chosen.
    failed_rule: str | None
    source: OrganisationSource


def event_date(event: Mapping[str, Any]) -> date | None:
    """The day the event happened (``occurred_at``), or None."""
    occurred = event.get("occurred_at")
    if isinstance(occurred, datetime):
        return occurred.date()
    return occurred if isinstance(occurred, date) else None


def event_age(event: Mapping[str, Any]) -> int | None:
    """The child's age in whole years on the day of the event; None when unknown."""
    born = (event.get("child") or {}).get("date_of_birth")
    at = event_date(event)
    if not isinstance(born, date) or at is None:
        return None
    return age_in_years(born, at)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str)


class Choices:
    """A bounded map from combination to the choices of every audience; one per engine (a
    reloaded policy gets a new engine, so a new, empty map).

    Args:
        policy: the policy whose rules the choices come from.
        size: most combinations kept; 0 turns the cache off.
    """

    __slots__ = ("_audiences", "_choices", "_purposes", "_size", "hits", "misses")

    def __init__(self, policy: Policy, size: int = MAX_COMBINATIONS) -> None:
        keys = {c.key for rules in policy.rules_by_target.values() for r in rules for c in r.conditions}
        self._size = size if keys <= NAMED_CONDITIONS else 0
        self._audiences = tuple(policy.audiences)
        purposes = {Purpose.FAMILY_HELP}
        purposes |= {r.purpose for rules in policy.rules_by_target.values() for r in rules if r.purpose}
        self._purposes = tuple(sorted(purposes))
        self._choices: dict[Hashable, tuple[Choice, ...]] = {}
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._choices)

    def clear(self) -> None:
        """Forget every combination."""
        self._choices.clear()

    def combination(
        self, event: Mapping[str, Any], event_type: EventType, risk: Risk, state: ChildState
    ) -> Hashable | None:
        """Everything the rules can read for ``event`` and ``state``; None when the cache is off
        or an input is not a plain value (then the engine decides without it)."""
        if not self._size:
            return None
        agency = (event.get("source") or {}).get("agency")
        referrer = (event.get("details") or {}).get("referrer_audience")
        if not (_plain(agency) and _plain(referrer)):
            return None
        return (
            event_type,
            risk,
            event_age(event),
            agency,
            referrer,
            state.active_flag("CHILD_PROTECTION_PLAN") is not None,
            state.active_flag("LOOKED_AFTER") is not None,
            tuple(state.consent_state(a, p) for a in self._audiences for p in self._purposes),
        )

    def get(self, key: Hashable) -> tuple[Choice, ...] | None:
        """The choices stored for ``key``, if any."""
        found = self._choices.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: Hashable, choices: tuple[Choice, ...]) -> None:
        """Keep ``choices`` for ``key``, forgetting the oldest combination when full."""
        if len(self._choices) >= self._size:
            del self._choices[next(iter(self._choices))]
        self._choices[key] = choices


def holds(
    cond: Condition, event: Mapping[str, Any], risk: Risk, state: ChildState, audience: Audience
) -> bool:
    """Whether one rule condition holds. Everything it reads is named by :meth:`Choices.combination`."""
    key = cond.key
    if key in ("age_under", "age_at_least"):
        age = event_age(event)
        if age is None:
            return False  # age unknown: the condition is not met (fail closed)
        return age < cond.age_under if key == "age_under" else age >= cond.age_at_least  # type: ignore[operator]
    if key == "risk_in":
        return risk in cond.risk_in  # type: ignore[operator]
    source_agency = (event.get("source") or {}).get("agency")
    if key == "source_agency_in":
        return source_agency in cond.source_agency_in  # type: ignore[operator]
    if key == "source_agency_not_in":
        return source_agency not in cond.source_agency_not_in  # type: ignore[operator]
    if key == "flag_active":
        return state.active_flag(cond.flag_active) is not None  # type: ignore[arg-type]
    if key == "no_flag_active":
        return state.active_flag(cond.no_flag_active) is None  # type: ignore[arg-type]
    if key == "consent_state_in":
        return state.consent_state(audience, Purpose.FAMILY_HELP) in cond.consent_state_in  # type: ignore[operator]
    if key == "referrer_audience":
        return (event.get("details") or {}).get("referrer_audience") == cond.referrer_audience
    return False
