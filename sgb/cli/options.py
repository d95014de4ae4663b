"""Options several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(command: F) -> F:
    """``--metrics-port`` and ``--metrics-host``: where a long-running process serves
    ``/metrics``, ``/livez`` and ``/readyz`` (nothing is served without a port)."""
    command = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address the metrics and probes server binds (0.0.0.0 for a kubelet or Prometheus).",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Serve Prometheus /metrics and the /livez, /readyz probes on this port.",
    )(command)
