"""Per-child state the engine reads: consent, active flags and the child's known organisations.

Pure data and pure updates; where it is stored (and rebuilt from the compacted topics)
is :mod:`consent.filter.store`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    #: The event that set the flag as it stands (a plan's start, its end), so that the source's
    #: retraction of that event can undo it. Not part of the flag's value: an event that
    #: restates the same plan under another id changes nothing.
    event_id: str | None = field(default=None, compare=False)


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
        """The state of the consent covering this audience (or ``ALL``) and purpose: the newest
        by recorded time, the more restrictive of two recorded at the same time (principle 6);
        ``NO_RECORD`` when none covers it. Another audience's consent never counts (principle 7)."""
        covering: Consent | None = None
        for consent in self.consents:
            if consent.purpose != purpose or consent.audience not in (audience, ALL_AUDIENCES):
                continue
            if covering is None or _prevails(consent, covering):
                covering = consent
        return covering.state if covering else NO_RECORD

    def with_consent(self, consent: Consent) -> ChildState:
        """Apply a consent record: it replaces the one for the same audience and purpose only
        if it was recorded later, or at the same time and is more restrictive (principle 6:
        recorded time, not arrival, decides; a tie goes to the more restrictive)."""
        kept = []
        for existing in self.consents:
            if existing.audience == consent.audience and existing.purpose == consent.purpose:
                if not _prevails(consent, existing):
                    return self
                continue
            kept.append(existing)
        kept.append(consent)
        # Built directly, not with dataclasses.replace: a rebuild applies one record per child
        # and replace's per-call field walk was a tenth of it.
        return ChildState(
            consents=tuple(kept),
            child_protection_plan=self.child_protection_plan,
            looked_after=self.looked_after,
            school_urn=self.school_urn,
            gp_practice_ods=self.gp_practice_ods,
            local_authority_code=self.local_authority_code,
            versions=self.versions,
            extra=self.extra,
        )

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


#: Principle 6's tie rule: of two consents recorded at the same time the more restrictive wins.
#: Every state but GIVEN withholds; among those the order only makes the choice independent of
#: arrival (the audit names one state, whichever record came first).
RESTRICTIVENESS = {"GIVEN": 0, "NOT_SOUGHT": 1, "REFUSED": 2, "WITHDRAWN": 3}


def _prevails(new: Consent, old: Consent) -> bool:
    """Whether ``new`` replaces ``old``: recorded later, or at the same time and more restrictive."""
    if new.recorded_at != old.recorded_at:
        return new.recorded_at > old.recorded_at
    # An unknown state counts as the most restrictive: fail closed.
    return RESTRICTIVENESS.get(new.state, 4) > RESTRICTIVENESS.get(old.state, 4)
