"""``sgb filter run``: the consent-and-role filter service."""

from __future__ import annotations

from pathlib import Path

import click

from broker.clients import wait_for_kafka
from broker.signals import stop_on_signals
from sgb.cli.options import metrics_options
from sgb.cli.root import Context, pass_context


@click.group("filter")
def filter_group() -> None:
    """The consent-and-role filter."""


@filter_group.command("run")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Policy file (default: the shipped baseline). Re-read when it changes.",
)
@click.option(
    "--group", "group_id", default=None, help="Consumer group (default: SGB_TOPIC_PREFIX + sgb-filter)."
)
@click.option("--instance", default=None, help="Stable name of this process (default: host name).")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10000),
    default=500,
    show_default=True,
    help="Most ingress events decided in one Kafka transaction.",
)
@metrics_options
@pass_context
def run(
    ctx: Context,
    policy_path: Path | None,
    group_id: str | None,
    instance: str | None,
    batch_size: int,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Decide, redact, deliver and audit every ingress event until SIGTERM or Ctrl-C."""
    from consent.filter.service import FilterService
    from consent.policy import BASELINE, load

    path = policy_path or BASELINE
    load(path)  # a bad policy file stops the start with its sentence, before anything waits
    stop = stop_on_signals()
    if not wait_for_kafka(ctx.settings, stop):
        click.echo("filter stopped before Kafka answered.")
        return
    service = FilterService(ctx.settings, path, group_id=group_id, instance=instance, batch_size=batch_size)
    server = None
    if metrics_port is not None:
        from broker.metrics import start_filter_series, start_metrics_server

        start_filter_series()
        server = start_metrics_server(metrics_port, health=service.health, host=metrics_host)
    try:
        counts = service.run(stop)
    finally:
        if server is not None:
            server.close()
    click.echo(
        f"filter stopped: {counts.get('shared', 0)} shared, {counts.get('withheld', 0)} withheld, "
        f"{counts.get('dead_lettered', 0)} dead-lettered."
    )


def register(cli: click.Group) -> None:
    cli.add_command(filter_group)
