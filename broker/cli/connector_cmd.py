"""``sgb connector run``: publish an agency's records to its ingress topic.

Files (a file, a folder, or a drop folder with ``--watch``) go through the shared runtime
(``connectors.runtime``): transactions, checkpoints, dead letters. ``--source mllp://HOST:PORT``
listens for HL7 v2 messages from a hospital integration engine instead.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from broker.cli import Context, pass_context
from broker.exceptions import SgbError

FORMATS = ("csv", "json", "fhir", "hl7")


@click.group("connector")
def connector() -> None:
    """Agency connectors: read an agency's records and publish them as events."""


@connector.command("run")
@click.argument("agency", metavar="AGENCY", type=click.Choice(["health", "police"], case_sensitive=False))
@click.option(
    "--source",
    required=True,
    metavar="PATH|mllp://HOST:PORT",
    help="A file or folder to read, or mllp://HOST:PORT to listen for HL7 v2.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="The source format (default: from the agency, the mapping file and the file names).",
)
@click.option(
    "--mapping",
    type=click.Path(path_type=Path),
    default=None,
    help="Mapping file: required for police (columns to event fields); optional for health "
    "(publisher, risk per event type).",
)
@click.option(
    "--watch", is_flag=True, help="Follow the folder, reading new files as they arrive, until stopped."
)
@click.option(
    "--name",
    default=None,
    help="This connector's name: its checkpoints and event ids depend on it (default: AGENCY-FORMAT).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=5000,
    show_default=True,
    help="Most records in one Kafka transaction (a checkpoint is written after each).",
)
@click.option(
    "--ack-timeout",
    type=click.FloatRange(1, 300),
    default=10.0,
    show_default=True,
    help="MLLP: seconds to wait for Kafka before answering AE.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="--watch: seconds between looks at the folder.",
)
@click.option(
    "--throttle",
    type=click.FloatRange(0.1, None),
    default=None,
    hidden=True,
    help="Records per second at most (tests use it to stop a run mid-file).",
)
@pass_context
def run(
    ctx: Context,
    agency: str,
    source: str,
    fmt: str | None,
    mapping: Path | None,
    watch: bool,
    name: str | None,
    batch_size: int,
    ack_timeout: float,
    poll_interval: float,
    throttle: float | None,
) -> None:
    """Read SOURCE and publish AGENCY's events; what cannot be mapped goes to the dead-letter topic.

    \b
    sgb connector run police --source exports/ --mapping connectors/mappings/police-domestic-abuse.yaml
    sgb connector run health --source fhir-drop/ --format fhir --watch
    sgb connector run health --source mllp://0.0.0.0:2575
    """
    agency = agency.lower()
    if source.startswith("mllp://"):
        _run_mllp(ctx, agency, source, fmt, mapping, name, ack_timeout)
        return
    from connectors.runtime.app import file_parts

    reader, mapper, fmt = file_parts(agency, Path(source), fmt, mapping)
    summary = _run_files(
        ctx,
        agency,
        Path(source),
        reader,
        mapper,
        name or f"{agency}-{fmt}",
        watch=watch,
        batch_size=batch_size,
        poll_interval=poll_interval,
        throttle=throttle,
    )
    click.echo(summary.line())
    if summary.failed_files:
        for message in summary.failed_files:
            click.echo(f"sgb: {message}", err=True)
        raise SystemExit(1)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def _run_files(
    ctx: Context,
    agency: str,
    source: Path,
    reader: Any,
    mapper: Any,
    name: str,
    *,
    watch: bool,
    batch_size: int,
    poll_interval: float,
    throttle: float | None,
) -> Any:
    from connectors.runtime.checkpoint import CheckpointStore, validate_name
    from connectors.runtime.delivery import TransactionalDelivery
    from connectors.runtime.pipeline import FileConnector

    settings = ctx.settings
    if not source.exists():
        msg = f"Source {source} does not exist."
        raise SgbError(msg)
    store = CheckpointStore(settings.state_dir / "connectors" / validate_name(name))
    store.lock()
    stop = _stop_on_signals()
    delivery = None
    try:
        delivery = TransactionalDelivery(settings, agency, name, should_stop=stop.is_set)
        runner = FileConnector(
            name, reader, mapper, delivery, store, batch_size=batch_size, throttle=throttle
        )
        if watch:
            return runner.run_watch(source, stop, poll_s=poll_interval)
        return runner.run_batch(source, stop)
    finally:
        if delivery is not None:
            delivery.close()
        store.unlock()


def _run_mllp(
    ctx: Context,
    agency: str,
    source: str,
    fmt: str | None,
    mapping: Path | None,
    name: str | None,
    ack_timeout: float,
) -> None:
    from connectors.health.mllp import parse_endpoint, serve_mllp

    if agency != "health":
        msg = "Only the health connector listens for HL7 v2 over MLLP."
        raise SgbError(msg)
    if fmt not in (None, "hl7"):
        msg = f"An mllp:// source carries HL7 v2, not {fmt}."
        raise SgbError(msg)
    host, port = parse_endpoint(source)
    counts = serve_mllp(
        ctx.settings,
        host,
        port,
        mapping=mapping,
        name=name or "health-hl7",
        ack_timeout=ack_timeout,
        echo=click.echo,
    )
    click.echo(
        f"MLLP listener stopped: {counts.get('accepted', 0)} accepted (AA), "
        f"{counts.get('rejected', 0)} rejected (AR), {counts.get('errors', 0)} errors (AE)."
    )


def register(cli: click.Group) -> None:
    cli.add_command(connector)
