"""The ``sgb`` command: one entry point, sub-commands by user.

Every command exits non-zero with one sentence on bad input; a user error never shows a
Python traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from broker.exceptions import SgbError
from broker.logs import configure
from broker.settings import Settings, load_settings
from schemas.loader import SchemaError


class Context:
    """What every sub-command gets: the settings, built once and validated at start."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
            configure(self._settings.log_level, self._settings.log_format)
        return self._settings


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(path_type=Path), default=None,
              help="TOML file of settings (also SGB_CONFIG); environment variables SGB_* override it.")
@click.version_option(package_name="sgb")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """sgb: the safeguarding event broker.

    \b
    operator:    sgb kafka start [--brokers 3] [--security sasl_ssl|mtls]|stop|status, sgb topics apply,
                 sgb credentials create|rotate|list, sgb filter run, sgb status, sgb dlq list|replay,
                 sgb audit verify, sgb erase --child KEY, sgb deploy k8s --output DIR
    agency:      sgb connector run <agency> --source ...
    hub:         sgb hub subscribe <audience> <org> --sink KIND:TARGET, sgb hub serve <audience> <org>
    security:    sgb keys list|rotate|activate|retire|export|trust (SGB_PROVENANCE=on)
    governance:  sgb policy check, sgb policy evaluate --event FILE [--state FILE], sgb schemas check
    everyone:    sgb demo, sgb simulate
    """
    ctx.obj = Context(config)


def _register() -> None:
    from broker.cli import (
        audit_cmd,
        connector_cmd,
        credentials_cmd,
        demo,
        deploy_cmd,
        dlq_cmd,
        erase_cmd,
        filter_cmd,
        hub,
        kafka,
        keys_cmd,
        policy,
        schemas_cmd,
        simulate_cmd,
        status_cmd,
        topics,
    )

    for module in (kafka, topics, filter_cmd, status_cmd, dlq_cmd, connector_cmd, hub, policy, schemas_cmd,
                   simulate_cmd, demo, deploy_cmd, audit_cmd, erase_cmd, credentials_cmd, keys_cmd):
        module.register(cli)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point."""
    _register()
    try:
        return cli.main(args=argv, prog_name="sgb", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sgb: interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (SgbError, SchemaError) as exc:
        click.echo(f"sgb: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("sgb: interrupted.", err=True)
        sys.exit(130)
