"""``sgb connector run``: publish an agency's records to its ingress topic.

Files (a file, a folder, or a drop folder with ``--watch``) go through the shared runtime
(``connectors.runtime``): transactions, checkpoints, dead letters. ``--source mllp://HOST:PORT``
listens for HL7 v2 messages from a hospital integration engine instead.

Schools and local authorities send returns that restate everything (a census, an SSDA903
extract, a Common Transfer File); their runs publish only what changed since the last run
(``connectors.runtime.snapshots``). ``serve-webhook`` takes schools' safeguarding concerns over
HTTPS, and ``school-token add`` issues a school's bearer token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from broker.exceptions import SgbError
from broker.metrics import serving
from broker.probes import Health
from broker.signals import stop_on_signals
from connectors.assembly import dry_run_file_connector, run_file_connector
from connectors.registry import AGENCY_NAMES, LocalAuthorityOptions, parts_for
from sgb.cli.options import metrics_options
from sgb.cli.root import Context, pass_context

FORMATS = ("csv", "json", "fhir", "hl7", "ctf", "cin", "ssda903", "family-help", "consent")


@click.group("connector")
def connector() -> None:
    """Agency connectors: read an agency's records and publish them as events."""


@connector.command("run")
@click.argument("agency", metavar="AGENCY", type=click.Choice(AGENCY_NAMES, case_sensitive=False))
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
@click.option(
    "--xref",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Local authority: CSV LAchildID,NHSnumber giving children's NHS numbers.",
)
@click.option(
    "--la", "la_code", default=None, help="Local authority: the DfE three-digit code (a CIN header has it)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the export before going live: read and map, print every dead-letter and "
    "data-quality reason with its place, send and write nothing; exit 1 if anything would be dead-lettered.",
)
@click.option(
    "--encoding",
    default=None,
    help="Local authority: the SSDA903 tables' encoding, e.g. cp1252 (default: detected).",
)
@click.option(
    "--period",
    default=None,
    help="Local authority: the collection year an SSDA903 extract or family-help export is the full "
    "return for (e.g. 2026); a later complete return of the same period withdraws what it no longer has.",
)
@click.option("--la-name", default=None, help="Local authority: its name, as partners see it.")
@click.option("--contact-team", default=None, help="Local authority: the team partners contact.")
@click.option("--contact-phone", default=None, help="Local authority: that team's phone number.")
@click.option("--contact-email", default=None, help="Local authority: that team's email address.")
@metrics_options
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
    xref: Path | None = None,
    la_code: str | None = None,
    dry_run: bool = False,
    encoding: str | None = None,
    period: str | None = None,
    la_name: str | None = None,
    contact_team: str | None = None,
    contact_phone: str | None = None,
    contact_email: str | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Read SOURCE and publish AGENCY's events; what cannot be mapped goes to the dead-letter topic.

    \b
    sgb connector run police --source exports/ --mapping connectors/mappings/police-domestic-abuse.yaml
    sgb connector run health --source fhir-drop/ --format fhir --watch
    sgb connector run health --source mllp://0.0.0.0:2575
    sgb connector run education --source ctf-drop/ --format ctf --watch
    sgb connector run local_authority --source cin/ --format cin --xref nhs-xref.csv
    sgb connector run local_authority --source 903/ --format ssda903 --la 202
    """
    agency = agency.lower()
    if source.startswith("mllp://"):
        _run_mllp(ctx, agency, source, fmt, mapping, name, ack_timeout, (metrics_port, metrics_host))
        return
    if metrics_port is not None and not watch:
        msg = "--metrics-port serves a long-running connector: use it with --watch or an mllp:// source."
        raise SgbError(msg)
    la = LocalAuthorityOptions(
        la_code, xref, la_name, contact_team, contact_phone, contact_email, encoding, period
    )
    parts = parts_for(agency, Path(source), fmt, mapping, la)
    if dry_run:
        _dry_run(ctx, agency, Path(source), parts, name or f"{agency}-{parts.format}", watch)
        return
    health = Health("connector")
    with serving(metrics_port, health, metrics_host):
        summary = run_file_connector(
            ctx.settings,
            agency,
            Path(source),
            parts,
            name or f"{agency}-{parts.format}",
            stop_on_signals(),
            watch=watch,
            batch_size=batch_size,
            poll_interval=poll_interval,
            throttle=throttle,
            health=health,
        )
    click.echo(summary.line())
    for line in summary.report():  # every dead-letter and data-quality reason, counted
        click.echo(f"  {line}")
    if agency == "local_authority":
        unmatched = summary.counts["unmatched"]
        click.echo(
            f"{unmatched} child(ren) published without an NHS number, "
            "keyed by the authority's id (unmatched)."
        )
    if summary.failed_files:
        for message in summary.failed_files:
            click.echo(f"sgb: {message}", err=True)
        raise SystemExit(1)
    if not watch and not summary.usable:
        click.echo(f"sgb: Nothing usable was read from {source}.", err=True)
        raise SystemExit(1)


def _dry_run(ctx: Context, agency: str, source: Path, parts: Any, name: str, watch: bool) -> None:
    """``--dry-run``: the accounting and every reason with its place; exit 1 on any dead letter."""
    if watch:
        msg = "--dry-run reads the source once; it cannot --watch."
        raise SgbError(msg)
    summary, would = dry_run_file_connector(ctx.settings, agency, source, parts, name)
    click.echo(f"Dry run, nothing sent: {summary.line()}")
    for place in would.dead_letters:
        click.echo(f"dead letter: {place.line()}")
    for place in would.findings:
        click.echo(f"data quality: {place.line()}")
    if would.dead_letters or summary.failed_files:
        raise SystemExit(1)
    if not summary.usable:
        click.echo(f"sgb: Nothing usable was read from {source}.", err=True)
        raise SystemExit(1)


def _run_mllp(
    ctx: Context,
    agency: str,
    source: str,
    fmt: str | None,
    mapping: Path | None,
    name: str | None,
    ack_timeout: float,
    metrics_at: tuple[int | None, str],
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
        metrics_port=metrics_at[0],
        metrics_host=metrics_at[1],
    )
    click.echo(
        f"MLLP listener stopped: {counts.get('accepted', 0)} accepted (AA), "
        f"{counts.get('rejected', 0)} rejected (AR), {counts.get('errors', 0)} errors (AE)."
    )


@connector.command("serve-webhook")
@click.option("--host", default="0.0.0.0", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True, help="The port.")
@click.option(
    "--tokens",
    "tokens_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The schools' token hashes (made by `sgb connector school-token add`).",
)
@click.option(
    "--name", default="education-webhook", show_default=True, help="This connector's name (event ids)."
)
@click.option(
    "--ack-timeout",
    type=click.FloatRange(1, 300),
    default=10.0,
    show_default=True,
    help="Seconds to wait for Kafka before answering 503.",
)
@click.option("--tls-cert", default=None, help="Server certificate (PEM) for HTTPS.")
@click.option("--tls-key", default=None, help="Server private key (PEM) for HTTPS.")
@click.option("--tls-ca", default=None, help="CA (PEM) that school client certificates must chain to (mTLS).")
@metrics_options
@pass_context
def serve_webhook_cmd(
    ctx: Context,
    host: str,
    port: int,
    tokens_file: Path,
    name: str,
    ack_timeout: float,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Take schools' safeguarding concerns (POST /v1/concerns, JSON, bearer token per school).

    Answers 202 only once Kafka has the event, 503 while it is unavailable; the OpenAPI
    document is at /openapi.json.

    \b
    sgb connector school-token add 100000 --tokens /etc/sgb/school-tokens
    sgb connector serve-webhook --port 8443 --tokens /etc/sgb/school-tokens --tls-cert c.pem --tls-key k.pem
    """
    from connectors.education.tokens import TokenStore
    from connectors.education.webhook import serve_webhook
    from connectors.runtime.checkpoint import validate_name

    tokens = TokenStore(tokens_file)
    if not len(tokens):
        msg = (
            f"Tokens file {tokens_file} holds no school's token; "
            "add one with `sgb connector school-token add URN`."
        )
        raise SgbError(msg)
    click.echo(
        f"Serving schools' concerns on {host}:{port} for {len(tokens)} token(s); Ctrl-C or SIGTERM stops."
    )
    serve_webhook(
        ctx.settings,
        host,
        port,
        tokens,
        name=validate_name(name),
        ack_timeout=ack_timeout,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_ca=tls_ca,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )


@connector.group("school-token")
def school_token() -> None:
    """Schools' bearer tokens for the webhook (stored hashed)."""


@school_token.command("add")
@click.argument("urn")
@click.option(
    "--tokens",
    "tokens_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The tokens file to add the hash to.",
)
def school_token_add(urn: str, tokens_file: Path) -> None:
    """Make a new token for the school URN and print it once (only its hash is kept)."""
    from connectors.education.tokens import TokenStore

    click.echo(TokenStore(tokens_file).add(urn))


def register(cli: click.Group) -> None:
    cli.add_command(connector)
