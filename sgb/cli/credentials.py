"""``sgb credentials create|rotate|list``: the principals' Kafka credentials, made by command."""

from __future__ import annotations

from pathlib import Path

import click

from broker.cluster.credentials import issue, states
from schemas.topics import load_declaration
from sgb.cli.root import Context, pass_context

_FILE = click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="The declaration the principals follow from (default: SGB_TOPICS_FILE, else the one shipped with sgb).",
)


@click.group("credentials")
def credentials() -> None:
    """Kafka credentials of the declared principals (run as the admin: --config .../sgb-admin.toml)."""


@credentials.command("create")
@click.argument("principal")
@_FILE
@pass_context
def create(ctx: Context, principal: str, path: Path | None) -> None:
    """Create PRINCIPAL's credential (SCRAM password or client certificate) and its settings file."""
    written = issue(ctx.settings, principal, load_declaration(ctx.settings.declaration_file(path)))
    click.echo(
        f"Created the credential of {principal}; its client settings: {written} "
        f"(run its process with --config {written})."
    )


@credentials.command("rotate")
@click.argument("principal")
@_FILE
@pass_context
def rotate(ctx: Context, principal: str, path: Path | None) -> None:
    """Replace PRINCIPAL's credential; a rotated SCRAM password is refused from now on."""
    written = issue(
        ctx.settings, principal, load_declaration(ctx.settings.declaration_file(path)), rotate=True
    )
    click.echo(f"Rotated the credential of {principal}; restart its process with {written}.")


@credentials.command("list")
@_FILE
@pass_context
def list_cmd(ctx: Context, path: Path | None) -> None:
    """Every declared principal, its role, and whether it has a credential."""
    for state in states(ctx.settings, load_declaration(ctx.settings.declaration_file(path))):
        cluster = (
            ""
            if state.on_cluster is None
            else ("credential on cluster" if state.on_cluster else "no credential on cluster")
        )
        local = f"settings {state.settings_file}" if state.settings_file else "no settings file"
        click.echo(f"{state.principal:40} {state.role:10} {', '.join(p for p in (cluster, local) if p)}")


def register(cli: click.Group) -> None:
    cli.add_command(credentials)
