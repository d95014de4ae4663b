"""``sgb simulate``'s progress: a bar on a terminal, a log line every few seconds otherwise
(counts and rates only, never a child's details)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol

from broker.logs import get_logger

log = get_logger("simulate")

LOG_EVERY_S = 5.0


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class LogProgress:
    """A plain log line every few seconds (for when standard error is not a terminal)."""

    def __init__(
        self, total: int, every: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total, self.every, self.clock = total, every, clock
        self.done = 0
        self.began = self._last = clock()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self._last >= self.every:
            self._last = now
            elapsed = now - self.began
            log.info(
                "simulating",
                count=self.done,
                records=self.total,
                elapsed_s=round(elapsed, 1),
                rate=round(self.done / elapsed, 1) if elapsed > 0 else None,
            )

    def finish(self) -> None:
        pass


class BarProgress:
    """A bar on standard error (for a terminal); log lines print above it."""

    def __init__(self, total: int, label: str) -> None:
        from broker.terminal import TerminalBar

        self._bar = TerminalBar(label, total)

    def advance(self, n: int = 1) -> None:
        self._bar.advance(n)

    def finish(self) -> None:
        self._bar.close()


def progress_for(total: int, label: str, interactive: bool | None = None) -> Progress:
    """A bar on a terminal, log lines otherwise."""
    if interactive is None:
        interactive = sys.stderr.isatty()
    return BarProgress(total, label) if interactive else LogProgress(total)
