"""``sgb identity review|link|unlink``: a person in the loop of the child index.

Reading and writing the link topic takes the filter's Kafka credentials (no other principal
has an ACL on it), so only an operator holding them sees the candidates. Output names
identifiers, scores and the fields that agreed; never names, dates of birth or addresses.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable

import click

from sgb.cli.root import Context, pass_context
from sgb.ops import identity as ops


@click.group("identity")
def identity() -> None:
    """Which identifiers are one child: review candidates, link or unlink with a reason."""


@identity.command("review")
@click.option("--la", "la", default=None, metavar="CODE", help="Only this local authority's candidates.")
@pass_context
def review(ctx: Context, la: str | None) -> None:
    """One line per candidate pair waiting for a person: identifiers, match weight, fields that agreed."""
    queued = ops.review(ctx.settings, la)
    for link in queued:
        weight = f"{link.match_weight:.1f}" if link.match_weight is not None else "-"
        agreed = ",".join(link.agreed_fields) or "-"
        click.echo(
            f"{link.link_id}  {link.a}  {link.b}  weight {weight}  agreed {agreed}  la {link.local_authority_code or '-'}"
        )
    click.echo(f"{len(queued)} candidate(s) waiting for review{f' for {la}' if la else ''}.")


def _operator(value: str | None) -> str:
    return value or getpass.getuser()


def _decision(name: str, why: str) -> Callable[[Callable[..., None]], click.Command]:
    """The command ``name`` with the arguments and options every decision takes."""

    def wrap(function: Callable[..., None]) -> click.Command:
        for option in (
            pass_context,
            click.option("--by", "by", default=None, help="Who decides (default: the login name)."),
            click.option("--reason", required=True, help=f"Why {why} (on record)."),
            click.argument("b"),
            click.argument("a"),
        ):
            function = option(function)
        return identity.command(name)(function)

    return wrap


@_decision("link", "they are one child")
def link(ctx: Context, a: str, b: str, reason: str, by: str | None) -> None:
    """Link identifiers A and B as one child (a confirmed candidate, or evidence seen elsewhere)."""
    done = ops.decide(ctx.settings, a, b, linked=True, reason=reason, operator=_operator(by))
    click.echo(f"Linked: link {done.link.link_id} recorded; every filter process decides against one child.")


@_decision("unlink", "they are not one child")
def unlink(ctx: Context, a: str, b: str, reason: str, by: str | None) -> None:
    """Undo the link of A and B, and list the shares made relying on it, for the MASH to act on."""
    done = ops.decide(ctx.settings, a, b, linked=False, reason=reason, operator=_operator(by))
    click.echo(
        f"Unlinked: link {done.link.link_id} recorded; no evidence links this pair again automatically."
    )
    if done.still_linked:
        click.echo("Note: the two are still linked through other links; review the others too.")
    click.echo(f"{len(done.shares)} share(s) were made relying on this link:")
    for share in done.shares:
        when = share["decided_at"].isoformat(timespec="seconds").replace("+00:00", "Z")
        click.echo(
            f"  {when}  event {share['event_id']}  {share['event_type']}  to {share['audience']} {share['organisation']}"
        )


def register(cli: click.Group) -> None:
    """Add ``sgb identity`` to the command line."""
    cli.add_command(identity)
