"""A file connector's log of what it could not publish as it was: a line for the first record
of each reason in a run, then one line a batch for the rest of each reason, with a count. A
return with a bad UPN in every tenth row is then a few lines, not one per row; the run's
summary and the dead-letter topic still account for every record."""

from __future__ import annotations

from collections import Counter

from broker.logs import get_logger

log = get_logger("connectors.pipeline")

#: The batch's line for records like one already logged on its own (same reason).
WITHHELD_AGAIN = "more records with fields withheld"
DEAD_LETTERED_AGAIN = "more records dead-lettered"


class Repeats:
    """Which reasons have had their line; how many more of each the open batch has."""

    __slots__ = ("_logged", "_pending")

    def __init__(self) -> None:
        self._logged: set[tuple[str, tuple[str, ...]]] = set()
        self._pending: Counter[tuple[str, tuple[str, ...]]] = Counter()

    def first(self, kind: str, reason: tuple[str, ...]) -> bool:
        """Whether this is the run's first record of ``kind`` (``WITHHELD_AGAIN`` or
        ``DEAD_LETTERED_AGAIN``) for ``reason``, to be logged on its own; a later one is
        counted for the batch's line."""
        if (kind, reason) in self._logged:
            self._pending[kind, reason] += 1
            return False
        self._logged.add((kind, reason))
        return True

    def log_batch(self) -> None:
        """One line per reason for the batch's records not logged one by one."""
        for (kind, reason), count in self._pending.items():
            if kind == WITHHELD_AGAIN:
                log.warning(kind, withheld_fields=list(reason), count=count)
            else:
                log.warning(kind, reason=reason[0], count=count)
        self._pending.clear()
