"""Progress of a connector run: a bar per file on a terminal (log lines print above it, see
:class:`broker.terminal.TerminalBar`), a stats line now and then otherwise.

Stats lines are structured log lines with counts and rates only, never record content.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from broker.logs import get_logger
from broker.terminal import TerminalBar

log = get_logger("connectors.progress")

#: The counts every run reports, in the order the summary prints them.
COUNT_NAMES = ("read", "published", "dead_lettered", "already_done", "no_event")


class Progress:
    """Reports a run's progress.

    Args:
        counts: the run's counters (shared with the pipeline; read here, never written).
        interactive: draw a progress bar (default: when standard error is a terminal).
        interval_s: seconds between stats lines when not interactive.
    """

    __slots__ = ("_bar", "_began", "_last", "_last_read", "_pending", "counts", "interactive", "interval_s")

    def __init__(
        self, counts: Counter[str], interactive: bool | None = None, interval_s: float = 10.0
    ) -> None:
        self.counts = counts
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.interval_s = interval_s
        self._bar: TerminalBar | None = None
        self._pending = 0
        self._began = self._last = time.monotonic()
        self._last_read = 0

    def start_file(self, name: str, total: int) -> None:
        """A file begins; ``total`` is an estimate of its records (0 if unknown)."""
        if self.interactive:
            self._bar = TerminalBar(name, total)
        else:
            log.info("file started", path=name, records=total)

    def advance(self) -> None:
        """One more record read."""
        if self._bar is not None:
            self._pending += 1
            if self._pending >= 250:
                self._bar.advance(self._pending)
                self._pending = 0
        elif not self.interactive:
            now = time.monotonic()
            if now - self._last >= self.interval_s:
                self.stats(now)

    def end_file(self) -> None:
        """The current file is finished (or the run is stopping)."""
        if self._bar is not None:
            self._bar.advance(self._pending)
            self._bar.close()
            self._bar = None
            self._pending = 0

    def tick(self) -> None:
        """A stats line if one is due (for loops that may read nothing for a while)."""
        if not self.interactive and time.monotonic() - self._last >= self.interval_s:
            self.stats()

    def stats(self, now: float | None = None) -> None:
        """Log one stats line: the counts so far and the recent read rate."""
        now = time.monotonic() if now is None else now
        read = self.counts["read"]
        rate = (read - self._last_read) / max(now - self._last, 1e-6)
        log.info(
            "connector progress",
            counts={k: self.counts[k] for k in COUNT_NAMES},
            rate=round(rate, 1),
            elapsed_s=round(now - self._began, 1),
        )
        self._last, self._last_read = now, read
