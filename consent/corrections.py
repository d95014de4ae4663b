"""Corrections follow the original, and only the original (POLICY.md principle 10).

Pure: from a correcting event, the share ledger's entry of the event it corrects, and the
engine, the decisions on the correction, one per recipient of the original and for no one
else. An amendment is decided again by the engine; a recipient whose grant (the rule it
received the original under) still applies to the same organisation gets the amended copy
redacted by it, any other gets a retraction instead. A retraction and an erasure are
metadata-only notices (:meth:`consent.engine.Engine.notice`). An amendment of an event that
was never decided is decided as that event (:func:`as_original`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from consent.engine import Decision, Engine
from consent.state import ChildState
from schemas.topics import delivery_topic
from schemas.vocabulary import Audience, CorrectionKind, LawfulBasis, Outcome, Purpose, Reason


@dataclass(frozen=True, slots=True)
class Recipient:
    """One organisation that received an event (an entry of the share ledger).

    Args:
        audience: the audience it received the event as.
        organisation: its key.
        rule: the rule whose grant it received the event under.
        told: the last correction it was sent about the event (None while none).
    """

    audience: Audience
    organisation: str
    rule: str
    told: CorrectionKind | None = None

    @property
    def topic(self) -> str:
        """The recipient's logical delivery topic."""
        return delivery_topic(self.audience, self.organisation)


def correction_of(event: Mapping[str, Any]) -> tuple[CorrectionKind, str] | None:
    """(kind, corrected event id) when ``event`` corrects an earlier one, else None."""
    correction = event.get("correction")
    if not isinstance(correction, Mapping):
        return None
    return CorrectionKind(correction["kind"]), str(correction["corrects_event_id"])


def as_original(event: Mapping[str, Any], decided: Callable[[str], bool]) -> dict[str, Any] | None:
    """An amendment of an event that was never decided, as that event; None for any other.

    It carries the full content, and no recipient was sent an original (the original was
    dead-lettered, or predates the feed: a FHIR resource first read at version 3), so it is
    decided as the original would have been, under the original's id: withholding it from
    everyone because its first version went unseen would lose what the source says now.
    """
    correction = correction_of(event)
    if correction is None or correction[0] is not CorrectionKind.AMENDED or decided(correction[1]):
        return None
    return {**event, "event_id": correction[1], "correction": None}


def recipients_of(decisions: list[Decision]) -> tuple[Recipient, ...]:
    """The recipients of an ordinary event's shares, for its ledger entry."""
    return tuple(
        Recipient(d.audience, d.organisation, d.rule)
        for d in decisions
        if d.outcome is Outcome.SHARE and d.organisation and d.rule
    )


def decide_correction(
    engine: Engine,
    event: Mapping[str, Any],
    state: ChildState,
    kind: CorrectionKind,
    original: tuple[Recipient, ...],
) -> list[Decision]:
    """One decision per recipient of the original: what it is told of the correction.

    A recipient already told of an erasure is told nothing more (there is nothing left to
    correct). An amendment is decided again; an ``AMENDED`` copy goes where the same rule
    grants it to the same organisation, a ``RETRACTED`` notice where it no longer does.
    """
    corrects = str(event["correction"]["corrects_event_id"])
    live = [r for r in original if r.told is not CorrectionKind.ERASED]
    if kind is not CorrectionKind.AMENDED:
        return [_notice(engine, event, state, r, kind, corrects) for r in live]
    again = {d.audience: d for d in engine.decide(event, state)}
    out = []
    for recipient in live:
        decision = again.get(recipient.audience)
        if (
            decision is not None
            and decision.outcome is Outcome.SHARE
            and decision.organisation == recipient.organisation
            and decision.rule == recipient.rule
        ):
            out.append(replace(decision, correction=CorrectionKind.AMENDED.value, corrects_event_id=corrects))
        else:
            out.append(_notice(engine, event, state, recipient, CorrectionKind.RETRACTED, corrects))
    return out


def _notice(
    engine: Engine,
    event: Mapping[str, Any],
    state: ChildState,
    recipient: Recipient,
    kind: CorrectionKind,
    corrects: str,
) -> Decision:
    """A metadata-only notice to one recipient of the original, under the rule it received it by."""
    copy, removed = engine.notice(event)
    consent = state.consent_state(recipient.audience, Purpose.FAMILY_HELP)
    return Decision(
        event_id=str(event["event_id"]),
        event_type=str(event["event_type"]),
        audience=recipient.audience,
        organisation=recipient.organisation,
        outcome=Outcome.SHARE,
        reason=Reason.GRANTED,
        rule=recipient.rule,
        # UK GDPR Art. 19: telling a recipient of rectification or erasure is an obligation.
        lawful_basis=LawfulBasis.LEGAL_OBLIGATION,
        consent_state=consent,
        policy_version=engine.policy.version_id,
        removed_fields=removed,
        event=copy,
        organisation_source="LEDGER",
        correction=kind.value,
        corrects_event_id=corrects,
    )


def told(original: tuple[Recipient, ...], decisions: list[Decision]) -> tuple[Recipient, ...]:
    """The original's recipients after ``decisions`` were delivered: each marked with what it was told."""
    sent = {
        (d.audience, d.organisation): CorrectionKind(d.correction)
        for d in decisions
        if d.correction and d.outcome is Outcome.SHARE
    }
    return tuple(replace(r, told=sent.get((r.audience, r.organisation), r.told)) for r in original)
