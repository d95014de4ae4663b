"""``sgb kafka fetch|start|stop|status``: the local Apache Kafka runtime."""

from __future__ import annotations

import time

import click

from broker.cluster.kafka_jars import fetch_jars
from broker.cluster.local_kafka import MAX_BROKERS, LocalKafka
from broker.cluster.security import MODES
from sgb.cli.root import Context, pass_context


@click.group("kafka")
def kafka() -> None:
    """Run a local Apache Kafka broker or cluster (KRaft, loopback, no Docker)."""


@kafka.command("fetch")
@pass_context
def fetch(ctx: Context) -> None:
    """Fetch the broker's jars from Maven Central into the cache (once)."""
    path = fetch_jars(ctx.settings)
    click.echo(f"Kafka jars ready in {path}")


@kafka.command("start")
@click.option("--port", type=click.IntRange(1024, 65535), default=None, help="Broker port (SGB_KAFKA_PORT).")
@click.option(
    "--brokers",
    type=click.IntRange(1, MAX_BROKERS),
    default=None,
    help="Nodes in the cluster, each broker and controller; ports run upward from --port "
    "(default: what this state directory last ran, else 1).",
)
@click.option(
    "--security",
    type=click.Choice(MODES),
    default=None,
    help="plaintext, sasl_ssl (SCRAM-SHA-512 over TLS) or mtls (client certificates), with the "
    "standard authorizer when secured (SGB_KAFKA_SECURITY; default: what this state "
    "directory last ran, else plaintext).",
)
@pass_context
def start(ctx: Context, port: int | None, brokers: int | None, security: str | None) -> None:
    """Start the broker(s) and wait until they answer; does nothing if already running."""
    settings = ctx.settings if port is None else ctx.settings.model_copy(update={"kafka_port": port})
    cluster = LocalKafka(settings, brokers, security)
    began = time.monotonic()
    if cluster.start():
        if cluster.brokers == 1:
            click.echo(
                f"Kafka started on {cluster.bootstrap} in {time.monotonic() - began:.1f} s "
                f"(pid {cluster.pid()}, logs in {cluster.log_dir})."
            )
        else:
            click.echo(
                f"Kafka cluster of {cluster.brokers} brokers started in "
                f"{time.monotonic() - began:.1f} s; bootstrap {cluster.bootstrap}."
            )
            for node in cluster.nodes:
                click.echo(
                    f"  node {node.node_id}: pid {node.pid()} on {node.bootstrap}, logs in {node.log_dir}"
                )
    elif cluster.brokers == 1:
        click.echo(f"Kafka is already running on {cluster.bootstrap} (pid {cluster.pid()}).")
    else:
        click.echo(
            f"Kafka cluster of {cluster.brokers} brokers is already running; bootstrap {cluster.bootstrap}."
        )
    if cluster.admin_settings_file is not None:
        click.echo(
            f"Secured ({cluster.security_mode}, ACLs enforced). Admin client settings: "
            f"{cluster.admin_settings_file}; next: sgb --config {cluster.admin_settings_file} "
            "topics apply, then sgb --config ... credentials create <principal>."
        )


@kafka.command("stop")
@pass_context
def stop(ctx: Context) -> None:
    """Stop the broker(s) this state directory started."""
    cluster = LocalKafka(ctx.settings)
    if cluster.stop():
        which = "Kafka" if cluster.brokers == 1 else f"Kafka cluster of {cluster.brokers} brokers"
        click.echo(f"{which} stopped.")
    else:
        click.echo("Kafka was not running.")


@kafka.command("status")
@pass_context
def status(ctx: Context) -> None:
    """Say whether the local broker(s) run and answer. Exit 3 if none runs, 4 if only some do."""
    cluster = LocalKafka(ctx.settings)
    state = cluster.status()
    if not state.running:
        click.echo(f"Kafka {state.version} is not running (state in {ctx.settings.kafka_dir}).")
        raise SystemExit(3)
    if cluster.brokers == 1:
        answer = "answering" if state.answering else "NOT answering"
        click.echo(
            f"Kafka {state.version} is running (pid {state.pid}) on {state.bootstrap}, {answer}; "
            f"log: {state.log_file}"
        )
        return
    up = sum(node.running for node in state.nodes)
    answer = "answering" if state.answering else "NOT answering with every broker"
    click.echo(
        f"Kafka {state.version} cluster: {up} of {len(state.nodes)} brokers running, {answer}; "
        f"bootstrap {state.bootstrap}"
    )
    for node in state.nodes:
        if node.running:
            line = f"running (pid {node.pid}), {'answering' if node.answering else 'NOT answering'}"
        else:
            line = "NOT running"
        click.echo(f"  node {node.node_id} on {node.bootstrap}: {line}; log: {node.log_file}")
    if state.degraded:
        raise SystemExit(4)


def register(cli: click.Group) -> None:
    cli.add_command(kafka)
