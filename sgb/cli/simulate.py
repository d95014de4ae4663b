"""``sgb simulate``: synthetic events of every type about invented children, to Kafka or a file."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from sgb.cli.root import Context, pass_context

_MAX_CHILDREN = 100_000


def _whole(minimum: int, maximum: int | None = None) -> Any:
    def check(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
        if value is None:
            return None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum:,}" if maximum is not None else ""
            raise click.BadParameter(f"must be a whole number of at least {minimum}{upper}, not {value}.")
        return value

    return check


def _rate(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        msg = f"must be a positive number of events per second, for example 50, not {value:g}."
        raise click.BadParameter(msg)
    return value


def _types(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    from sgb.simulate.events import EVENT_TYPES

    if value is None:
        return None
    chosen = tuple(dict.fromkeys(part.strip().upper() for part in value.split(",") if part.strip()))
    if not chosen:
        raise click.BadParameter("name at least one event type, for example DOMESTIC_ABUSE_INCIDENT.")
    for name in chosen:
        if name not in EVENT_TYPES:
            raise click.BadParameter(f"{name} is not an event type; the types are {', '.join(EVENT_TYPES)}.")
    return chosen


def _start(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = f"{value!r} is not an ISO 8601 time, for example 2026-11-23T08:00:00Z."
        raise click.BadParameter(msg) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a time zone, for example 2026-11-23T08:00:00Z.")
    return parsed


@click.command("simulate")
@click.option(
    "--count",
    type=int,
    default=100,
    show_default=True,
    callback=_whole(0),
    help="How many events to generate.",
)
@click.option(
    "--rate",
    type=float,
    default=None,
    callback=_rate,
    metavar="EVENTS_PER_S",
    help="At most this many records a second (default: as fast as Kafka takes them).",
)
@click.option(
    "--children",
    type=int,
    default=20,
    show_default=True,
    callback=_whole(1, _MAX_CHILDREN),
    help="How many synthetic children the events are about.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Repeat a run: the same seed (and --start) gives the same children and events. "
    "Default: random, printed at the end.",
)
@click.option(
    "--types",
    default=None,
    callback=_types,
    metavar="T1,T2",
    help="Only these event types, comma-separated (default: all fourteen, in a realistic mix).",
)
@click.option(
    "--consents",
    type=int,
    default=0,
    show_default=True,
    callback=_whole(0),
    help="Also publish this many family-help consent records to sg.consent.v1, before the events.",
)
@click.option(
    "--start",
    default=None,
    callback=_start,
    metavar="TIME",
    help="When the simulated period starts, ISO 8601 with zone (default: so that it ends about now).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE.jsonl",
    help="Write the events to this file as JSON lines instead of publishing them to Kafka "
    "(consent records go to FILE.consents.jsonl).",
)
@pass_context
def simulate(
    ctx: Context,
    count: int,
    rate: float | None,
    children: int,
    seed: int | None,
    types: tuple[str, ...] | None,
    consents: int,
    start: datetime | None,
    output: Path | None,
) -> None:
    """Generate realistic synthetic events of every type about a population of invented children.

    The same child (NHS number from the 999 test range, name, date of birth, school, GP
    practice, local authority) appears in health, police, school and local-authority events.
    By default the events are published to each agency's ingress topic; with --output they
    are written to a file, one event per line, in the JSON shape `sgb policy evaluate` reads.
    """
    from sgb.simulate.run import run_simulation

    if count == 0 and consents == 0:
        raise click.UsageError("Nothing to simulate: --count and --consents are both 0.")
    settings = ctx.settings if output is None else None
    report = run_simulation(
        settings,
        count=count,
        children=children,
        seed=seed,
        types=types,
        rate=rate,
        consents=consents,
        output=output,
        start=start,
    )
    click.echo(report.line())


def register(cli: click.Group) -> None:
    cli.add_command(simulate)
