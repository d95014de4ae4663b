"""The state of a linked child: the states kept under each of its identifiers, seen as one.

State stays stored under the identifier it arrived with (consent under the UPN a school
recorded it with, a flag under the LA's id), so undoing a link needs no untangling: the
next decision simply stops seeing the other identifier's state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from consent.state import ChildState, Flag


def _flag(mine: Flag | None, theirs: Flag | None) -> Flag | None:
    """An active flag under any linked identifier counts (the flag is there so that emergency
    care and the hub see it); otherwise the event's own identifier's record is kept."""
    if mine is not None and mine.active:
        return mine
    if theirs is not None and theirs.active:
        return theirs
    return mine or theirs


def linked_state(own: ChildState, others: Iterable[ChildState]) -> ChildState:
    """``own`` (the state under the event's identifier) with the states of the identifiers
    linked to it: every consent record, newest by recorded time winning per audience and
    purpose as for one identifier (principle 6); an active flag from any; the organisations
    of the event's own identifier first, then the others' (principle 9's recorded ones).
    Fact versions stay those of ``own``: they order its own status records only."""
    merged = own
    for other in others:
        for consent in other.consents:
            merged = merged.with_consent(consent)
        merged = replace(
            merged,
            child_protection_plan=_flag(merged.child_protection_plan, other.child_protection_plan),
            looked_after=_flag(merged.looked_after, other.looked_after),
            school_urn=merged.school_urn or other.school_urn,
            gp_practice_ods=merged.gp_practice_ods or other.gp_practice_ods,
            local_authority_code=merged.local_authority_code or other.local_authority_code,
        )
    return merged
