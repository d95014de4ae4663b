"""``sgb audit verify``: check the audit topic's hash chains (the work is :mod:`sgb.ops.audit`);
``sgb audit trace EVENT_ID``: who received an event and what they were told of its corrections.

Reads the audit topic from the beginning (``read_committed``) and checks every chain:
each record's hash recomputes, each record links to the one before, sequences run on
without gaps; where the filter group committed a chain head, the chain must reach it
with the same hash, so removed newest records are found too. Prints one line per
problem (partition, offset, chain, what is wrong: never a record's content) and a
summary; exits 1 if anything is wrong.
"""

from __future__ import annotations

import json
import sys
import time

import click
from confluent_kafka import KafkaException

from broker.exceptions import SgbError
from schemas.topics import AUDIT_TOPIC
from sgb.cli.root import Context, pass_context
from sgb.ops.audit import verify
from sgb.ops.trace import read_trace


@click.group("audit")
def audit() -> None:
    """The audit topic: check that no decision record was changed, removed or reordered."""


@audit.command("verify")
@click.option(
    "--topic",
    default=AUDIT_TOPIC,
    show_default=True,
    help="The (logical) audit topic to check; the topic prefix is added.",
)
@click.option(
    "--group",
    default=None,
    help="The filter's consumer group, whose committed chain heads anchor each chain's newest "
    "record [default: <topic prefix>sgb-filter].",
)
@click.option("--no-heads", is_flag=True, help="Check the links only, not the committed heads.")
@click.option(
    "--allow-legacy",
    is_flag=True,
    help="Accept unchained records written before chaining existed (only before a partition's first "
    "chained record); otherwise each is a problem.",
)
@click.option(
    "--settle",
    type=click.FloatRange(0, 600),
    default=10.0,
    show_default=True,
    help="Seconds to wait at the end for records of a head committed a moment ago.",
)
@pass_context
def verify_cmd(
    ctx: Context, topic: str, group: str | None, no_heads: bool, allow_legacy: bool, settle: float
) -> None:
    """One line per chain found (its audit partition, records, last sequence, committed head),
    one line per problem (partition, offset, chain, what), then a summary; exit 1 on any problem.

    Each chain must name a real ingress partition, live on the audit partition its name maps
    to, link record to record, and end at a head the filter group committed and signed with
    the filter's key (trusted in this state directory's key store: `sgb keys trust`)."""
    settings = ctx.settings
    group = None if no_heads else group or f"{settings.topic_prefix}sgb-filter"
    physical = settings.topic(topic)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        click.echo(f"... {done} of about {total} record(s) read", err=True)

    try:
        checker = verify(settings, physical, group, settle, progress, allow_legacy=allow_legacy)
    except KafkaException as exc:
        msg = f"Kafka refused reading the audit topic {physical}: {exc.args[0].str()}."
        raise SgbError(msg) from None
    for chain, partition, records, last, state in checker.report():
        click.echo(
            f"chain {chain}: audit partition {partition}, {records} record(s) to sequence {last}, {state}"
        )
    for problem in checker.problems:
        click.echo(str(problem))
    anchored = sum(1 for chain, head in checker.expected.items() if head.sequence >= 0)
    chained = checker.records - checker.unchained
    legacy = f", {checker.unchained} unchained record(s)" if checker.unchained else ""
    summary = (
        f"{len(checker.tails)} chain(s), {chained} chained record(s) verified{legacy}; "
        f"{anchored} chain head(s) committed by group {group or '-'} checked; "
        f"{len(checker.problems)} problem(s) in {time.monotonic() - started:.1f} s."
    )
    click.echo(summary)
    if group and not anchored and chained:
        click.echo(
            f"Note: group {group} has committed no chain heads, so the newest record of each chain "
            "was not checked (is --group the filter's group?)."
        )
    if checker.problems:
        sys.exit(1)


@audit.command("trace")
@click.argument("event_id")
@pass_context
def trace_cmd(ctx: Context, event_id: str) -> None:
    """Who received EVENT_ID, and were they told of its corrections (JSON, metadata only)."""
    try:
        found = read_trace(ctx.settings, event_id)
    except KafkaException as exc:
        msg = f"Kafka refused reading the audit topic: {exc.args[0].str()}."
        raise SgbError(msg) from None
    if not found["decisions"]:
        msg = f"No decision on event {event_id} is on the audit topic."
        raise SgbError(msg)
    click.echo(json.dumps(found, indent=2))


def register(cli: click.Group) -> None:
    cli.add_command(audit)
