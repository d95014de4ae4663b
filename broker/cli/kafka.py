"""``sgb kafka fetch|start|stop|status``: the local Apache Kafka runtime."""

from __future__ import annotations

import time

import click

from broker.cli import Context, pass_context
from broker.kafka_runtime import LocalKafka, fetch_jars


@click.group("kafka")
def kafka() -> None:
    """Run a local Apache Kafka broker (KRaft, loopback, no Docker)."""


@kafka.command("fetch")
@pass_context
def fetch(ctx: Context) -> None:
    """Fetch the broker's jars from Maven Central into the cache (once)."""
    path = fetch_jars(ctx.settings)
    click.echo(f"Kafka jars ready in {path}")


@kafka.command("start")
@click.option("--port", type=click.IntRange(1024, 65535), default=None, help="Broker port (SGB_KAFKA_PORT).")
@pass_context
def start(ctx: Context, port: int | None) -> None:
    """Start the broker and wait until it answers; does nothing if it is already running."""
    settings = ctx.settings if port is None else ctx.settings.model_copy(update={"kafka_port": port})
    broker = LocalKafka(settings)
    began = time.monotonic()
    if broker.start():
        click.echo(f"Kafka started on {broker.bootstrap} in {time.monotonic() - began:.1f} s "
                   f"(pid {broker.pid()}, logs in {broker.log_dir}).")
    else:
        click.echo(f"Kafka is already running on {broker.bootstrap} (pid {broker.pid()}).")


@kafka.command("stop")
@pass_context
def stop(ctx: Context) -> None:
    """Stop the broker this state directory started."""
    broker = LocalKafka(ctx.settings)
    if broker.stop():
        click.echo("Kafka stopped.")
    else:
        click.echo("Kafka was not running.")


@kafka.command("status")
@pass_context
def status(ctx: Context) -> None:
    """Say whether the local broker is running and answering. Exit 3 if it is not running."""
    state = LocalKafka(ctx.settings).status()
    if not state.running:
        click.echo(f"Kafka {state.version} is not running (state in {ctx.settings.state_dir / 'kafka'}).")
        raise SystemExit(3)
    answer = "answering" if state.answering else "NOT answering"
    click.echo(f"Kafka {state.version} is running (pid {state.pid}) on {state.bootstrap}, {answer}; "
               f"log: {state.log_file}")


def register(cli: click.Group) -> None:
    cli.add_command(kafka)
