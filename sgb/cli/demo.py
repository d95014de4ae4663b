"""``sgb demo``: the whole flow on a local broker with synthetic data."""

from __future__ import annotations

import click

from sgb.cli.root import Context, pass_context


@click.command("demo")
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait for results.")
@pass_context
def demo(ctx: Context, timeout: float) -> None:
    """Run the whole flow on a local Kafka broker with synthetic children, and show what arrived."""
    from sgb.demo.run import run_demo

    run_demo(ctx.settings, click.echo, timeout)
    click.echo("")
    click.echo("Demo complete.")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
