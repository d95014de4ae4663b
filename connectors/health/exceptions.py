"""What the health connector reads but does not publish, each counted by its own kind.

Each is a :class:`~connectors.exceptions.NoEvent`: the message is well formed and answered
``AA`` (it is not an error the sender can fix), but it is counted under ``kind`` in the run's
summary and logged once per kind, so nothing goes unread without a word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.exceptions import NoEvent

if TYPE_CHECKING:
    from connectors.health.hl7_lifecycle import AdtStep


class NotUsed(NoEvent):
    """A message type or trigger the connector does not use."""

    kind = "not_used"


class Training(NoEvent):
    """A training or debugging message (HL7 MSH-11 ``T`` or ``D``): never published."""

    kind = "training"


class HeldForCorrection(NoEvent):
    """A lifecycle step that amends, moves or cancels what an earlier message said, but names
    no visit (PV1-19), so no correction can name the event it corrects.

    The parsed ``step`` is kept on the exception (what it would have corrected).

    Args:
        reason: why it is held (names the trigger, never a value).
        step: the parsed lifecycle step.
    """

    kind = "held_for_corrections"

    def __init__(self, reason: str, step: AdtStep) -> None:
        super().__init__(reason)
        self.step = step
