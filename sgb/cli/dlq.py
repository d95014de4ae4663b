"""``sgb dlq list`` and ``sgb dlq replay``: what could not be processed, and re-submitting it after a fix.

Listing shows metadata only (when, component, origin, reason, event id), never a payload.

Replay re-produces each dead letter's original bytes, with its original key (and, for a
filter dead letter, its original provenance signature, so it is verified again), to the topic
it was read from. Each dead letter is replayed at most once: the re-produced record and a
marker keyed by the dead letter's position (``<partition>:<offset>`` on the compacted
topic ``sg.dlq.replayed.v1``) are written in one Kafka transaction, so either both are
visible or neither, and a second run skips what the markers name. Dead letters from a
connector's source files have no origin topic: they are reported and skipped.
"""

from __future__ import annotations

import click

from sgb.cli.root import Context, pass_context
from sgb.ops.dlq_replay import Replayer, matches
from sgb.ops.status import dead_letters


@click.group("dlq")
def dlq() -> None:
    """The dead-letter topic: list what failed and why; replay it after a fix."""


@dlq.command("list")
@click.option("--reason", default=None, help="Only dead letters whose reason contains this text (any case).")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="Show at most this many, the newest.",
)
@pass_context
def list_cmd(ctx: Context, reason: str | None, limit: int) -> None:
    """One line per dead letter: when, component, origin, reason, event id (never the payload)."""
    found = [d for d in dead_letters(ctx.settings, with_payload=True) if matches(d.reason, reason)]
    shown = found[-limit:]
    for d in shown:
        when = d.failed_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        click.echo(f"{when}  {d.component}  {d.origin}  {d.reason}  event {d.event_id or '-'}")
    matching = " matching the reason" if reason else ""
    click.echo(f"{len(shown)} of {len(found)} dead letter(s) shown{matching}.")


@dlq.command("replay")
@click.option("--reason", default=None, help="Only dead letters whose reason contains this text (any case).")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; send nothing.")
@click.option(
    "--sign-as",
    default=None,
    metavar="SIGNER",
    help="Sign unsigned events again as this agency (police, or police.<org>) with its key here, "
    "for events a connector published without signing.",
)
@pass_context
def replay(ctx: Context, reason: str | None, dry_run: bool, sign_as: str | None) -> None:
    """Re-submit dead letters' original payloads to their origin topic, each at most once.

    Events that failed provenance because their signature does not match, or their signer may
    not write there, are never replayed. Unsigned ones are replayed only with --sign-as."""
    replayer = Replayer(ctx.settings, dry_run=dry_run, sign_as=sign_as)
    plan = replayer.plan(reason)
    if plan.unsigned:
        click.echo(
            f"{plan.unsigned} dead letter(s) are events a connector published unsigned while the filter "
            "verifies signatures: replaying the same bytes would fail again. Turn SGB_PROVENANCE on "
            "for that connector, then replay them where its key is with --sign-as AGENCY."
        )
    if plan.forged:
        click.echo(
            f"{plan.forged} dead letter(s) carry a signature that does not match or a signer that may not "
            "write there: they are not replayed (a forged or altered message)."
        )
    if plan.failed_again:
        click.echo(
            f"{plan.failed_again} of these failed again after an earlier replay of the same payload: replaying "
            "them only helps once the cause is fixed."
        )
    if plan.from_source_files:
        click.echo(
            f"{plan.from_source_files} dead letter(s) came from a connector's source files, not a topic, "
            "and cannot be replayed to a topic: fix the source record and let the connector read "
            "it again."
        )
    if dry_run:
        for d in plan.chosen:
            click.echo(f"would replay {d.origin} ({d.component}: {d.reason}) event {d.event_id or '-'}")
        click.echo(f"Dry run: {len(plan.chosen)} would be replayed, {plan.summary()}")
        return
    sent = replayer.send(plan)
    click.echo(f"{sent} dead letter(s) replayed to their origin topic, {plan.summary()}")


def register(cli: click.Group) -> None:
    """Add ``sgb dlq`` to the command line."""
    cli.add_command(dlq)
