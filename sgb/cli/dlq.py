"""``sgb dlq list`` and ``sgb dlq replay``: what could not be processed, and re-submitting it after a fix.

Listing shows metadata only (when, component, origin, reason, event id), never a payload.

Replay re-produces each dead letter's original bytes, with its original key (and, for a
filter dead letter, its original provenance signature, so it is verified again), to the topic
it was read from. Each dead letter is replayed at most once: the re-produced record and a
marker keyed by the dead letter's position (``<partition>:<offset>`` on the compacted
topic ``sg.dlq.replayed.v1``) are written in one Kafka transaction, so either both are
visible or neither, and a second run skips what the markers name. Dead letters from a
connector's source files have no origin topic: they are reported and skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import click
from confluent_kafka import OFFSET_BEGINNING, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from broker.exceptions import SgbError
from broker.settings import Settings
from schemas.topics import DLQ_TOPIC, REPLAYED_TOPIC
from sgb.cli.root import Context, pass_context

MARKER_TOPIC = REPLAYED_TOPIC
BATCH = 100


@click.group("dlq")
def dlq() -> None:
    """The dead-letter topic: list what failed and why; replay it after a fix."""


def _matches(reason: str, wanted: str | None) -> bool:
    return wanted is None or wanted.lower() in reason.lower()


@dlq.command("list")
@click.option("--reason", default=None, help="Only dead letters whose reason contains this text (any case).")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="Show at most this many, the newest.",
)
@pass_context
def list_cmd(ctx: Context, reason: str | None, limit: int) -> None:
    """One line per dead letter: when, component, origin, reason, event id (never the payload)."""
    from sgb.ops.status import dead_letters

    found = [d for d in dead_letters(ctx.settings, with_payload=True) if _matches(d.reason, reason)]
    shown = found[-limit:]
    for d in shown:
        when = d.failed_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        click.echo(f"{when}  {d.component}  {d.origin}  {d.reason}  event {d.event_id or '-'}")
    matching = " matching the reason" if reason else ""
    click.echo(f"{len(shown)} of {len(found)} dead letter(s) shown{matching}.")


def _markers(settings: Settings) -> tuple[set[str], set[str]]:
    """Positions (``partition:offset``) already replayed, and the digests of their payloads."""
    from broker.clients import admin_client
    from sgb.ops.status import read_to_end

    topic = settings.topic(MARKER_TOPIC)
    admin = admin_client(settings)
    meta = admin.list_topics(timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        futures = admin.create_topics(
            [NewTopic(topic, 1, replication_factor=-1, config={"cleanup.policy": "compact"})]
        )
        try:
            futures[topic].result(30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in exc.args[0].name():
                msg = f"The replay marker topic {topic} could not be created: {exc.args[0].str()}."
                raise SgbError(msg) from None
        return set(), set()
    done: set[str] = set()
    digests: set[str] = set()

    def note(msg: Any) -> None:
        done.add((msg.key() or b"").decode())
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            digests.add(json.loads(msg.value())["sha256"])

    read_to_end(settings, {(topic, p): OFFSET_BEGINNING for p in meta.partitions}, note)
    return done, digests


def _digest(payload: bytes | None) -> str:
    return hashlib.sha256(payload or b"").hexdigest()


@dlq.command("replay")
@click.option("--reason", default=None, help="Only dead letters whose reason contains this text (any case).")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; send nothing.")
@pass_context
def replay(ctx: Context, reason: str | None, dry_run: bool) -> None:
    """Re-submit dead letters' original payloads to their origin topic, each at most once."""
    from broker.clients import producer
    from broker.logs import get_logger
    from sgb.ops.status import dead_letters

    settings = ctx.settings
    prod = None
    if not dry_run:
        # Fence any other replay first, so the markers read next cannot change under us.
        prod = producer(settings, transactional_id=f"sgb-dlq-replay-{settings.topic_prefix or 'default'}")
        prod.init_transactions(30)
    done, digests = _markers(settings)
    chosen, skipped_source, already, empty = [], 0, 0, 0
    for d in dead_letters(settings, with_payload=True):
        if not _matches(d.reason, reason):
            continue
        if f"{d.partition}:{d.offset}" in done:
            already += 1
        elif not d.origin_topic:
            skipped_source += 1
        elif d.payload is None:
            empty += 1
        else:
            chosen.append(d)
    again = sum(1 for d in chosen if _digest(d.payload) in digests)
    if again:
        click.echo(
            f"{again} of these failed again after an earlier replay of the same payload: replaying "
            "them only helps once the cause is fixed."
        )
    if skipped_source:
        click.echo(
            f"{skipped_source} dead letter(s) came from a connector's source files, not a topic, "
            "and cannot be replayed to a topic: fix the source record and let the connector read "
            "it again."
        )
    summary = (
        f"{already} already replayed, {skipped_source} from source files skipped, "
        f"{empty} without payload skipped."
    )
    if prod is None:
        for d in chosen:
            click.echo(f"would replay {d.origin} ({d.component}: {d.reason}) event {d.event_id or '-'}")
        click.echo(f"Dry run: {len(chosen)} would be replayed, {summary}")
        return
    try:
        sent = _replay(settings, prod, chosen)
    finally:
        prod.flush(10)
    get_logger("broker.dlq").info(
        "dead letters replayed", replayed=sent, skipped=skipped_source + empty, count=already
    )
    click.echo(f"{sent} dead letter(s) replayed to their origin topic, {summary}")


def _replay(settings: Settings, prod: Any, chosen: list[Any]) -> int:
    """Re-produce in transactions of up to BATCH, each with the markers of what it re-produced."""
    marker_topic = settings.topic(MARKER_TOPIC)
    dlq_topic = settings.topic(DLQ_TOPIC)
    sent = 0
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        prod.begin_transaction()
        try:
            for d in batch:
                where = f"{dlq_topic}[{d.partition}]@{d.offset}"
                prod.produce(
                    d.origin_topic,
                    key=d.key,
                    value=d.payload,
                    headers=[("sgb.replayed_from", where.encode()), *d.provenance],
                )
                marker = {
                    "replayed_at": datetime.now(UTC).isoformat(),
                    "origin": d.origin,
                    "dead_letter": where,
                    "sha256": _digest(d.payload),
                }
                prod.produce(
                    marker_topic, key=f"{d.partition}:{d.offset}".encode(), value=json.dumps(marker).encode()
                )
            prod.commit_transaction(60)
        except KafkaException as exc:
            with contextlib.suppress(KafkaException):  # fenced or gone: nothing of the batch is visible
                prod.abort_transaction(30)
            msg = f"Replay stopped after {sent} dead letter(s): Kafka refused a batch ({exc.args[0].str()})."
            raise SgbError(msg) from None
        sent += len(batch)
    return sent


def register(cli: click.Group) -> None:
    """Add ``sgb dlq`` to the command line."""
    cli.add_command(dlq)
