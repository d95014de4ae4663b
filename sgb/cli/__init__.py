"""The ``sgb`` command: one entry point, sub-commands by user.

Every command exits non-zero with one sentence on bad input; a user error never shows a
Python traceback. Each command module parses its options and calls one function below the
roof; this module only puts them together.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from schemas.exceptions import SgbError
from sgb.cli import (
    audit,
    connector,
    credentials,
    demo,
    deploy,
    dlq,
    erase,
    hub,
    kafka,
    keys,
    policy,
    simulate,
    status,
    topics,
)
from sgb.cli import filter as filter_group
from sgb.cli import schemas as schemas_group
from sgb.cli.root import cli

COMMANDS = (
    kafka,
    topics,
    filter_group,
    status,
    dlq,
    connector,
    hub,
    policy,
    schemas_group,
    simulate,
    demo,
    deploy,
    audit,
    erase,
    credentials,
    keys,
)
for _module in COMMANDS:
    _module.register(cli)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point."""
    try:
        return cli.main(args=argv, prog_name="sgb", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sgb: interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SgbError as exc:
        click.echo(f"sgb: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("sgb: interrupted.", err=True)
        sys.exit(130)
