"""The ADT lifecycle of an attendance, as the triggers of HL7 v2 tell it.

A04 (registration) or A01 (admission) starts an attendance, A03 (discharge) ends it, A08
amends it, A02 moves it, A11/A12/A13 cancel the admission, the transfer or the discharge
(the last reopens it), A40 merges two patients' identifiers. :func:`adt_step` reads what a
correction needs from any of them: which visit of which patient at which sender, and for a
merge which identifiers are retired. ``START`` and ``END`` are published as events, each
with an event id derived from the visit (sender and PV1-19), so that a later message about
the same visit can name it: A08, A02 and A12 publish an ``AMENDED`` correction of the start
(its full new content), A11 a ``RETRACTED`` correction of the start and A13 of the end
(POLICY.md principle 10). A40 is identity evidence: each of its PID/MRG groups (``merges``)
says the record MRG-1 names is the patient PID-3 names, and is published as a merge event
(:mod:`connectors.health.hl7_merge`), never as an attendance. A correction whose message
names no visit is held (see :class:`~connectors.health.exceptions.HeldForCorrection`).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.health.hl7v2 import Hl7Message
from connectors.health.lifecycle import CORRECTING_STEPS, MERGING_STEPS, PUBLISHED_STEPS, Step
from connectors.runtime.corrections import derived_event_id

__all__ = [
    "CORRECTING_STEPS",
    "MERGING_STEPS",
    "PUBLISHED_STEPS",
    "AdtStep",
    "Step",
    "adt_step",
    "visit_event_id",
]


#: The triggers of the lifecycle and what each does.
TRIGGER_STEPS: dict[str, Step] = {
    "A04": Step.START,
    "A01": Step.START,
    "A03": Step.END,
    "A08": Step.AMEND,
    "A02": Step.MOVE,
    "A11": Step.CANCEL_START,
    "A12": Step.CANCEL_MOVE,
    "A13": Step.CANCEL_END,
    "A40": Step.MERGE,
}
#: Assigning authorities (CX-4) of an NHS number in PID-3 or MRG-1 (its type, CX-5, is ``NH``).
NHS_AUTHORITIES = frozenset({"NHS", "NHSNBR", "2.16.840.1.113883.2.1.4.1"})
#: Identifier types (CX-5) that are a hospital's own patient id: medical record number,
#: patient internal id, patient external id.
LOCAL_ID_TYPES = frozenset({"MR", "PI", "PT", "MRN"})
#: One segment field's identifiers as (value, assigning authority CX-4, identifier type CX-5).
PatientIds = tuple[tuple[str, str | None, str | None], ...]


@dataclass(frozen=True, slots=True)
class AdtStep:
    """One lifecycle step, as a correction will need it (holds identifiers: never log it).

    Args:
        trigger: MSH-9.2 (``A08``).
        step: what it does.
        sender: MSH-3 and MSH-4, who sent it.
        control_id: MSH-10.
        visit_number: PV1-19.1, the attendance it is about (None when the message has none).
        patient_ids: PID-3's identifiers as (value, assigning authority, type).
        prior_patient_ids: MRG-1's, for a merge: the identifiers that are retired.
        merges: for a merge, every PID/MRG group as (PID-3's, MRG-1's) identifiers; the first
            is ``patient_ids`` and ``prior_patient_ids``.
    """

    trigger: str
    step: Step
    sender: str
    control_id: str | None
    visit_number: str | None
    patient_ids: PatientIds
    prior_patient_ids: PatientIds
    merges: tuple[tuple[PatientIds, PatientIds], ...] = ()


def _ids(msg: Hl7Message, segment: str, field: int) -> PatientIds:
    out = []
    for rep in range(1, msg.repetitions(segment, field) + 1):
        value = msg.get(segment, field, 1, rep)
        if value:
            out.append((value, msg.get(segment, field, 4, rep), msg.get(segment, field, 5, rep)))
    return tuple(out)


def adt_step(msg: Hl7Message, trigger: str) -> AdtStep | None:
    """The lifecycle step of an ADT message, or None when its trigger is not one of the lifecycle's."""
    step = TRIGGER_STEPS.get(trigger)
    if step is None:
        return None
    return AdtStep(
        trigger=trigger,
        step=step,
        sender=msg.sender,
        control_id=msg.control_id,
        visit_number=msg.get("PV1", 19, 1),
        patient_ids=_ids(msg, "PID", 3),
        prior_patient_ids=_ids(msg, "MRG", 1),
        merges=tuple((_ids(g, "PID", 3), _ids(g, "MRG", 1)) for g in msg.groups("PID", "MRG"))
        if step is Step.MERGE
        else (),
    )


def visit_event_id(connector: str, step: AdtStep, which: Step) -> str | None:
    """The event id of the ``which`` (START or END) event of the visit ``step`` is about: the
    same for every message of that visit from that sender, so a correction can name it; None
    when the message names no visit (PV1-19)."""
    if not step.visit_number:
        return None
    return derived_event_id(connector, f"visit|{step.sender}|{step.visit_number}|{which.value}")
