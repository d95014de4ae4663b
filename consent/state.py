"""Per-child state the engine reads: consent, active flags and the child's known organisations.

Pure data and pure updates; where it is stored (and rebuilt from the compacted topics)
is :mod:`consent.filter.store`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from schemas.vocabulary import NO_RECORD, Audience, Purpose

ALL_AUDIENCES = "ALL"


@dataclass(frozen=True, slots=True)
class Consent:
    """One consent decision in force for a child, audience (or ALL) and purpose."""

    audience: str
    purpose: str
    state: str
    given_by: str | None
    recorded_at: datetime
    consent_id: str | None = None
    recorded_by: str | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    """An active child protection plan or looked-after status."""

    active: bool
    local_authority_code: str | None = None
    start_date: date | None = None


@dataclass(frozen=True, slots=True)
class ChildState:
    """Everything the filter knows about one child beyond the event in hand."""

    consents: tuple[Consent, ...] = ()
    child_protection_plan: Flag | None = None
    looked_after: Flag | None = None
    school_urn: str | None = None
    gp_practice_ods: str | None = None
    local_authority_code: str | None = None
    #: Per-fact versions (``FACTS`` in :mod:`consent.state_updates`): how many times the filter has
    #: changed each fact, so that a status record read back late cannot undo a newer change.
    versions: tuple[tuple[str, int], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def version(self, fact: str) -> int:
        """The version of one fact (0 when it was never changed under versioning)."""
        for name, number in self.versions:
            if name == fact:
                return number
        return 0

    def consent_state(self, audience: Audience, purpose: Purpose) -> str:
        """The state of the newest consent (by recorded time) covering this audience and purpose."""
        newest: Consent | None = None
        for consent in self.consents:
            if consent.purpose != purpose or consent.audience not in (audience, ALL_AUDIENCES):
                continue
            if newest is None or consent.recorded_at > newest.recorded_at:
                newest = consent
        return newest.state if newest else NO_RECORD

    def recorded_consent_state(self, audience: Audience, purpose: Purpose) -> str:
        """What an audit record says about consent: the state covering this audience, or else
        the newest for the purpose whatever audience it names (so a significant-harm override
        of a family's refusal shows the refusal)."""
        covering = self.consent_state(audience, purpose)
        if covering != NO_RECORD:
            return covering
        newest = max(
            (c for c in self.consents if c.purpose == purpose), key=lambda c: c.recorded_at, default=None
        )
        return newest.state if newest else NO_RECORD

    def with_consent(self, consent: Consent) -> ChildState:
        """Apply a consent record: it replaces the one for the same audience and purpose only
        if it was recorded later (principle 6: recorded time, not arrival, decides)."""
        kept = []
        for existing in self.consents:
            if existing.audience == consent.audience and existing.purpose == consent.purpose:
                if existing.recorded_at >= consent.recorded_at:
                    return self
                continue
            kept.append(existing)
        kept.append(consent)
        return replace(self, consents=tuple(kept))

    def active_flag(self, which: str) -> Flag | None:
        """The active flag named ``CHILD_PROTECTION_PLAN``, ``LOOKED_AFTER`` or ``ANY``."""
        candidates = {
            "CHILD_PROTECTION_PLAN": [self.child_protection_plan],
            "LOOKED_AFTER": [self.looked_after],
            "ANY": [self.child_protection_plan, self.looked_after],
        }[which]
        for flag in candidates:
            if flag is not None and flag.active:
                return flag
        return None
