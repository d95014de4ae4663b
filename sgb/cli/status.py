"""``sgb status``: topic ends, consumer lag, dead letters and decisions per minute."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from sgb.cli.root import Context, pass_context


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> list[str]:
    """Rows as fixed-width text columns under their headers (numbers right-aligned)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), indent + "  ".join("-" * w for w in widths), *(line(r) for r in cells)]


def render(status: object) -> str:
    """The status as readable tables."""
    from sgb.ops.status import Status

    assert isinstance(status, Status)
    out = [f"sgb status at {status.generated_at}", ""]
    shown = [t for t in status.topics if t.end_offset]
    out.append(
        "Topics (records: what a reader gets, transaction markers left out, '~' an upper bound; "
        "end offset and retained count Kafka's offsets, markers included)"
    )
    rows = [
        (t.topic, t.partitions, t.records if t.exact else f"~{t.records}", t.end_offset, t.retained)
        for t in shown
    ]
    headers = ("topic", "partitions", "records", "end offset", "retained")
    out += table(headers, rows) if rows else ["  (all empty)"]
    if len(shown) < len(status.topics):
        out.append(f"  {len(status.topics) - len(shown)} empty topic(s) not shown.")
    out += ["", "Consumer lag (records a read_committed reader has still to read; '~' is an upper bound)"]
    if status.lags:
        out += table(
            ("role", "group", "topic", "lag"),
            [(g.role, g.group, g.topic, g.lag if g.exact else f"~{g.lag}") for g in status.lags],
        )
    else:
        out.append("  (no consumer group has committed offsets on these topics)")
    if status.unread:
        out += ["", "Delivery topics no hub has read yet"]
        out += table(("topic", "records"), sorted(status.unread.items()))
    out += ["", "Dead letters by reason"]
    if status.dead_letters:
        out += table(
            ("count", "component", "latest", "reason"),
            [(d.count, d.component, d.latest, d.reason) for d in status.dead_letters],
        )
    else:
        out.append("  (none)")
    total_shared = sum(m.shared for m in status.decisions)
    total_withheld = sum(m.withheld for m in status.decisions)
    out += [
        "",
        f"Decisions per minute, last {status.minutes} minute(s), UTC "
        f"({total_shared} shared, {total_withheld} withheld)",
    ]
    out += table(
        ("minute", "shared", "withheld"), [(m.minute[11:16], m.shared, m.withheld) for m in status.decisions]
    )
    told = ", ".join(f"{n} {kind.lower()}" for kind, n in status.corrections.items()) or "none"
    out += ["", f"Corrections told to recipients, same minutes: {told}"]
    return "\n".join(out)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")
@click.option(
    "--minutes",
    type=click.IntRange(1, 1440),
    default=10,
    show_default=True,
    help="How many recent minutes of decisions to count.",
)
@pass_context
def status(ctx: Context, as_json: bool, minutes: int) -> None:
    """Per-topic end offsets, the filter's and every hub's lag, dead letters by reason, and decisions
    per minute (shares and withholds)."""
    from sgb.ops import status as status_module

    found = status_module.collect(ctx.settings, minutes=minutes)
    if as_json:
        click.echo(json.dumps(status_module.as_json(found), indent=2))
    else:
        click.echo(render(found))


def register(cli: click.Group) -> None:
    """Add ``sgb status`` to the command line."""
    cli.add_command(status)
