"""``sgb hub subscribe``: a hub organisation's subscription to its delivery topic."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from typing import Any

import click

from broker.cli import Context, pass_context
from broker.exceptions import SgbError


@click.group("hub")
def hub() -> None:
    """Subscribe a safeguarding hub to what it is entitled to."""


@hub.command("subscribe")
@click.argument("audience")
@click.argument("organisation")
@click.option("--sink", required=True, help="Where events go: jsonl:PATH.")
@click.option("--since", default=None, help="Replay from this time (ISO 8601 with zone).")
@click.option("--group", "group_id", default=None, help="Consumer group (default: one per hub organisation).")
@click.option("--idle-exit", type=float, default=None, help="Exit after this many seconds with nothing new.")
@click.option("--max-events", type=int, default=None, help="Exit after writing this many events.")
@pass_context
def subscribe(ctx: Context, audience: str, organisation: str, sink: str, since: str | None, group_id: str | None,
              idle_exit: float | None, max_events: int | None) -> None:
    """Write AUDIENCE ORGANISATION's deliveries to the sink, each exactly once."""
    from broker.hub import Subscriber, open_sink

    since_at = None
    if since is not None:
        try:
            since_at = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            msg = f"--since {since!r} is not an ISO 8601 time, for example 2026-11-23T08:00:00Z."
            raise SgbError(msg) from None
        if since_at.tzinfo is None:
            msg = f"--since {since!r} needs a time zone, for example 2026-11-23T08:00:00Z."
            raise SgbError(msg)
    subscriber = Subscriber(ctx.settings, audience, organisation, group_id)
    target = open_sink(sink)
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    written = subscriber.run(target, stop, since=since_at, idle_timeout=idle_exit, max_events=max_events)
    click.echo(f"{written} event(s) written to {sink}.")


def register(cli: click.Group) -> None:
    cli.add_command(hub)
