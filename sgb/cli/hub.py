"""``sgb hub subscribe`` and ``sgb hub serve``: a hub organisation's subscription and its inbox page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from broker.exceptions import SgbError
from broker.signals import stop_on_signals
from sgb.cli.options import metrics_options
from sgb.cli.root import Context, pass_context


@click.group("hub")
def hub() -> None:
    """Subscribe a safeguarding hub to what it is entitled to, and show it to practitioners."""


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = f"--since {value!r} is not an ISO 8601 time, for example 2026-11-23T08:00:00Z."
        raise SgbError(msg) from None
    if since.tzinfo is None:
        msg = f"--since {value!r} needs a time zone, for example 2026-11-23T08:00:00Z."
        raise SgbError(msg)
    return since


@hub.command("subscribe")
@click.argument("audience")
@click.argument("organisation")
@click.option(
    "--sink",
    required=True,
    metavar="KIND:TARGET",
    help="Where events go: jsonl:PATH, sqlite:PATH, postgres:DSN or webhook:URL.",
)
@click.option("--since", default=None, help="Replay from this time (ISO 8601 with zone).")
@click.option(
    "--group",
    "group_id",
    default=None,
    help="Consumer group (default: SGB_TOPIC_PREFIX + sgb-hub-<audience>-<organisation>; a "
    "second sink needs its own).",
)
@click.option(
    "--instance",
    default=None,
    help="This process's stable name in the group (default: the host name); a restart with the "
    "same name takes its partitions back at once.",
)
@click.option("--idle-exit", type=float, default=None, help="Exit after this many seconds with nothing new.")
@click.option("--max-events", type=int, default=None, help="Exit after writing this many new events.")
@metrics_options
@pass_context
def subscribe(
    ctx: Context,
    audience: str,
    organisation: str,
    sink: str,
    since: str | None,
    group_id: str | None,
    instance: str | None,
    idle_exit: float | None,
    max_events: int | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Write AUDIENCE ORGANISATION's deliveries to the sink, each exactly once.

    Offsets are committed only after the sink holds the batch durably (fsync, database
    commit, or a 2xx answer to every post); sinks skip event ids they already hold.
    """
    from broker.hub.sinks import open_sink
    from broker.hub.subscriber import Subscriber
    from broker.metrics import start_hub_series, start_metrics_server
    from broker.probes import Health

    since_at = _since(since)
    subscriber = Subscriber(ctx.settings, audience, organisation, group_id, instance)
    target = open_sink(sink, subscriber.audience, subscriber.organisation)
    stop = stop_on_signals()
    health = Health("hub")
    start_hub_series(subscriber.audience, subscriber.organisation, target.kind)
    server = start_metrics_server(metrics_port, health, metrics_host) if metrics_port is not None else None
    try:
        written = subscriber.run(
            target, stop, since=since_at, idle_timeout=idle_exit, max_events=max_events, health=health
        )
    finally:
        if server is not None:
            server.close()
    click.echo(f"{written} new event(s) written to the {target.kind} sink.")
    if subscriber.refused:
        refused = ", ".join(f"{count} {reason}" for reason, count in sorted(subscriber.refused.items()))
        click.echo(f"{sum(subscriber.refused.values())} delivery(ies) refused by provenance: {refused}.")


@hub.command("serve")
@click.argument("audience")
@click.argument("organisation")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port the inbox page listens on.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep loopback and put the organisation's login proxy in front.",
)
@click.option(
    "--db",
    default=None,
    metavar="sqlite:PATH",
    help="The inbox store (default: <state dir>/hub/<audience>.<organisation>.db). "
    "It may be the same file `sgb hub subscribe --sink sqlite:PATH` writes.",
)
@click.option(
    "--group",
    "group_id",
    default=None,
    help="Consumer group of the page's own subscriber (default: sgb-hub-<audience>-<organisation>-inbox).",
)
@click.option(
    "--policy",
    "policy_path",
    default=None,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Policy file whose rule descriptions explain decisions (default: the shipped baseline).",
)
@click.option(
    "--read-audit",
    is_flag=True,
    help="Also read the audit topic to count what was withheld from this hub and why. "
    "Needs credentials that may read sg.audit.decisions.v1 (an auditor's, not a hub's).",
)
@pass_context
def serve(
    ctx: Context,
    audience: str,
    organisation: str,
    port: int,
    host: str,
    db: str | None,
    group_id: str | None,
    policy_path: Path | None,
    read_audit: bool,
) -> None:
    """Serve AUDIENCE ORGANISATION's inbox page: what arrived, newest first, and why.

    A background subscriber keeps the page's SQLite store current with the hub's
    deliveries and the filter's decision each one carries (rule, lawful basis, consent).
    """
    import uvicorn

    from broker.logs import get_logger
    from sgb.inbox import InboxFeed, create_app, rule_descriptions

    settings = ctx.settings
    if db is None:
        path = settings.hub_store(audience, organisation)
    else:
        kind, _, target = db.partition(":")
        if kind != "sqlite" or not target:
            msg = "--db must be sqlite:PATH, for example sqlite:/var/lib/sgb/inbox.db."
            raise SgbError(msg)
        path = Path(target)
    _check_port(host, port)
    feed = InboxFeed(settings, audience, organisation, path, group_id, read_audit=read_audit)
    feed.check_onboarded()
    app = create_app(
        feed.store, feed.audience, organisation, health=feed.health, rules=rule_descriptions(policy_path)
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, server_header=False, log_config=None
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; these handlers then stop the
    # readers, so the process finishes cleanly instead of dying by the signal.
    stop_on_signals(feed.stop)
    feed.start()
    get_logger("broker.inbox").info(
        "inbox serving", audience=feed.audience, organisation=organisation, host=host, port=port
    )
    try:
        server.run()
    finally:
        feed.close()


def _check_port(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            msg = f"The inbox cannot listen on {host}:{port}: it is in use or not this machine's."
            raise SgbError(msg) from None


def register(cli: click.Group) -> None:
    """Add ``sgb hub`` to the command line."""
    cli.add_command(hub)
