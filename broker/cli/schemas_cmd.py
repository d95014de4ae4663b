"""``sgb schemas check``: the catalogue's governance."""

from __future__ import annotations

import click


@click.group("schemas")
def schemas_group() -> None:
    """The event catalogue (schemas/avro)."""


@schemas_group.command("check")
def check() -> None:
    """Every schema parses, every leaf field has known tags and a doc."""
    from schemas.governance import check_catalogue

    summary = check_catalogue()
    click.echo(summary)


def register(cli: click.Group) -> None:
    cli.add_command(schemas_group)
