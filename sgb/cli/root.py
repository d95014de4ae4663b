"""The root of the ``sgb`` command: the group every sub-command hangs from, and the context
they share (the settings, built once and validated at start)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from broker.settings import Settings


class Context:
    """What every sub-command gets: the settings, built once and validated at start.

    The settings and logging are imported when a command first asks for them, so a command
    that needs neither (``sgb --version``, ``sgb policy check``) starts in the time of click.
    """

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None
        self._logging = False

    @property
    def settings(self) -> Settings:
        """The settings, with logging configured from them (for commands that log)."""
        settings = self.quiet_settings
        if not self._logging:
            from broker.logs import configure

            configure(settings.log_level, settings.log_format)
            self._logging = True
            if settings.tracing != "off":  # a command that logs is one worth tracing
                from broker.tracing import configure_tracing

                configure_tracing(settings.tracing, _service(click.get_current_context(silent=True)))
        return settings

    @property
    def quiet_settings(self) -> Settings:
        """The settings alone, for a command that prints its answer and logs nothing."""
        if self._settings is None:
            from broker.settings import load_settings

            self._settings = load_settings(self.config)
        return self._settings


def _service(command: click.Context | None) -> str:
    """This process's tracing name: ``sgb-filter``, ``sgb-connector``, ``sgb-hub``, ..."""
    while command is not None and command.parent is not None and command.parent.parent is not None:
        command = command.parent
    return f"sgb-{command.info_name}" if command is not None and command.parent is not None else "sgb"


pass_context = click.make_pass_decorator(Context)


#: Each command group and the module that defines it (imported when the command runs, or for --help).
COMMANDS = {
    name: f"sgb.cli.{name}"
    for name in (
        "kafka",
        "topics",
        "filter",
        "status",
        "dlq",
        "connector",
        "hub",
        "policy",
        "schemas",
        "simulate",
        "demo",
        "deploy",
        "audit",
        "erase",
        "identity",
        "credentials",
        "keys",
    )
}


class LazyGroup(click.Group):
    """The root group: a command's module is imported when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name]).register(self)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML file of settings (also SGB_CONFIG); environment variables SGB_* override it.",
)
@click.version_option(package_name="sgb")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """sgb: the safeguarding event broker.

    \b
    operator:    sgb kafka start [--brokers 3] [--security sasl_ssl|mtls]|stop|status, sgb topics apply,
                 sgb credentials create|rotate|list, sgb filter run, sgb status, sgb dlq list|replay,
                 sgb audit verify, sgb erase --child KEY, sgb deploy k8s --output DIR,
                 sgb identity review [--la CODE]|link A B --reason ...|unlink A B --reason ...
    agency:      sgb connector run <agency> --source ..., sgb connector serve-webhook --tokens FILE,
                 sgb connector school-token add <urn> --tokens FILE
    hub:         sgb hub subscribe <audience> <org> --sink KIND:TARGET, sgb hub serve <audience> <org>
    security:    sgb keys list|rotate|activate|retire|export|trust (SGB_PROVENANCE=on)
    governance:  sgb policy check, sgb policy evaluate --event FILE [--state FILE], sgb schemas check,
                 sgb schemas register [--registry-url URL], sgb schemas asyncapi [--output FILE],
                 sgb schemas serve [--port 8085] (the embedded registry over Confluent's REST API)
    everyone:    sgb demo, sgb simulate
    """
    ctx.obj = Context(config)
