"""One progress bar on a terminal that log lines do not garble.

The bar is drawn with rich on standard error. While it is drawn, standard error is rich's
proxy, and sgb's log lines (structlog writes to standard error as it is when a line is
written, see :mod:`broker.logs`) are printed above the bar, whole, instead of through it.
Off a terminal nobody draws a bar: callers log a stats line now and then instead.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class TerminalBar:
    """A progress bar with a label, a count and elapsed time, until :meth:`close`.

    Args:
        label: what is being done (a file name, "simulating").
        total: how many units; None or 0 when unknown (the bar then pulses).
        stream: where the bar is drawn; standard error by default.
        force_terminal: draw as on a terminal even when ``stream`` is not one (tests).
    """

    __slots__ = ("_progress", "_task")

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO | None = None,
        *,
        force_terminal: bool | None = None,
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # soft_wrap: a long log line is left for the terminal to wrap, never broken by rich.
        console = Console(file=stream or sys.stderr, force_terminal=force_terminal, soft_wrap=True)
        self._progress: Any = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            redirect_stdout=False,  # a command's own output stays on standard output
            redirect_stderr=True,  # log lines print above the bar
        )
        self._progress.start()
        self._task = self._progress.add_task(label, total=total or None)

    def advance(self, count: int = 1) -> None:
        """``count`` more units done."""
        self._progress.advance(self._task, count)

    def close(self) -> None:
        """Draw the bar one last time, complete as far as it got, and give the terminal back."""
        self._progress.stop()
