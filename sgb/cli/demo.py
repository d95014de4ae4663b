"""``sgb demo``: the whole flow on a local broker with synthetic data."""

from __future__ import annotations

from pathlib import Path

import click

from sgb.cli.root import Context, pass_context


@click.command("demo")
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait for results.")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File for the log lines of every process the demo runs (default: demo/demo.log in the state directory).",
)
@pass_context
def demo(ctx: Context, timeout: float, log_file: Path | None) -> None:
    """Run the whole flow on a local Kafka broker with synthetic children, and show what arrived."""
    from sgb.demo.run import run_demo

    run_demo(ctx.settings, click.echo, timeout, log_file)
    click.echo("")
    click.echo("Demo complete.")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
