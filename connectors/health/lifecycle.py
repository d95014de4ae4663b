"""What a source's message does to an event it sent: the steps of an event's lifecycle,
shared by HL7 v2 (:mod:`connectors.health.hl7_lifecycle`, read from the ADT trigger) and FHIR
(:mod:`connectors.health.fhir_lifecycle`, read from a resource's version and status).

``START`` and ``END`` are events of their own, each with an event id derived from the
source's record (a visit, a resource), so a later message about the same record can name
it; the correcting steps are published as a correction of that event (POLICY.md principle
10): ``AMENDED`` with the full new content, ``RETRACTED`` for what was cancelled or entered in
error. :func:`with_lifecycle` is the one place an event gets that identity.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from connectors.runtime.corrections import mark_correction


class Step(StrEnum):
    """What a message does to the event it is about."""

    START = "START"
    END = "END"
    AMEND = "AMEND"
    MOVE = "MOVE"
    CANCEL_START = "CANCEL_START"
    CANCEL_MOVE = "CANCEL_MOVE"
    CANCEL_END = "CANCEL_END"
    MERGE = "MERGE"


#: Steps published as events of their own.
PUBLISHED_STEPS = frozenset({Step.START, Step.END})
#: Steps published as identity evidence, not as an event about the child.
MERGING_STEPS = frozenset({Step.MERGE})
#: Steps published as corrections: (correction kind, the step whose event they correct).
CORRECTING_STEPS: dict[Step, tuple[str, Step]] = {
    Step.AMEND: ("AMENDED", Step.START),
    Step.MOVE: ("AMENDED", Step.START),
    Step.CANCEL_MOVE: ("AMENDED", Step.START),
    Step.CANCEL_START: ("RETRACTED", Step.START),
    Step.CANCEL_END: ("RETRACTED", Step.END),
}


def with_lifecycle(
    event: dict[str, Any], step: Step, original: str | None, own: str | None = None
) -> dict[str, Any]:
    """Give a mapped event its place in the lifecycle, in place, and return it.

    Args:
        event: the event as mapped (its event id the record's).
        step: what the message does.
        original: the event id of the record's event that ``step`` is or corrects (derived
            from the source's record; None when the message names none: the record's id stays).
        own: for a correction, its own event id (a re-send is the same); None keeps the record's.
    """
    correcting = CORRECTING_STEPS.get(step)
    if correcting is None:
        event["event_id"] = original or event["event_id"]
        return event
    assert original is not None, "a correction names the event it corrects"
    return mark_correction(event, correcting[0], original, own or event["event_id"])
