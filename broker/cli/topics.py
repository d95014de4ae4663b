"""``sgb topics apply``: make the cluster's topics match the declaration."""

from __future__ import annotations

from pathlib import Path

import click

from broker.cli import Context, pass_context
from broker.topics import DECLARATION, apply, load_declaration


@click.group("topics")
def topics() -> None:
    """Topics as code (deploy/topics.yaml)."""


@topics.command("apply")
@click.option("--file", "path", type=click.Path(path_type=Path), default=DECLARATION, show_default=True,
              help="The topic declaration.")
@click.option("--dry-run", is_flag=True, help="Report what would change without changing it.")
@pass_context
def apply_cmd(ctx: Context, path: Path, dry_run: bool) -> None:
    """Create missing topics and change what differs; running it twice changes nothing."""
    report = apply(ctx.settings, load_declaration(path), dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    for name in report.created:
        click.echo(f"{verb} {name}")
    for line in report.altered:
        click.echo(f"{'would change' if dry_run else 'changed'} {line}")
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(f"{len(report.created)} created, {len(report.altered)} changed, {len(report.unchanged)} unchanged.")


def register(cli: click.Group) -> None:
    cli.add_command(topics)
