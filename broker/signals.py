"""Stopping a long-running process cleanly: SIGTERM (what Kubernetes and systemd send) and
Ctrl-C set an event the main loop checks, so the open batch is finished or handed back
instead of the process dying mid-transaction."""

from __future__ import annotations

import signal
import threading
from typing import Any


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """An event set by SIGTERM or SIGINT (``stop`` when given); call from the main thread."""
    event = stop if stop is not None else threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        event.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    return event
