"""The ``sgb`` command: one entry point, sub-commands by user.

Every command exits non-zero with one sentence on bad input; a user error never shows a
Python traceback. Each command module parses its options and calls one function below the
roof; the root group (:mod:`sgb.cli.root`) imports a command's module only when it runs, so
`sgb policy evaluate` does not pay for Kafka clients it never makes.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from schemas.exceptions import SgbError
from sgb.cli.root import cli


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
