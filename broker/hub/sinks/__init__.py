"""Where a hub writes what it receives: a file, SQLite, PostgreSQL or a webhook.

Every sink is idempotent by event id and durable before it returns, so the subscriber
can commit offsets right after a write and a restart never leaves a duplicate.
"""

from __future__ import annotations

from pathlib import Path

from broker.hub.sinks.base import Sink, SinkError, SinkUnavailable

KINDS = ("jsonl", "sqlite", "postgres", "webhook")


def open_sink(spec: str, audience: str, organisation: str) -> Sink:
    """A sink from its command-line form: ``jsonl:PATH``, ``sqlite:PATH``, ``postgres:DSN``, ``webhook:URL``.

    Args:
        spec: the sink, KIND:TARGET.
        audience: the hub's audience (database sinks belong to one hub organisation).
        organisation: the hub's organisation code.
    """
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        msg = "The sink must be KIND:TARGET, for example jsonl:/var/lib/hub/inbox.jsonl."
        raise SinkError(msg)
    if kind == "jsonl":
        from broker.hub.sinks.jsonl import JsonlSink

        return JsonlSink(Path(target))
    if kind == "sqlite":
        from broker.hub.sinks.sqlite import SqliteSink

        return SqliteSink(Path(target), audience, organisation)
    if kind == "postgres":
        from broker.hub.sinks.postgres import PostgresSink

        return PostgresSink(target, audience, organisation)
    if kind == "webhook":
        from broker.hub.sinks.webhook import WebhookSink

        return WebhookSink(target)
    msg = f"Sink kind {kind!r} is not supported; use one of {', '.join(KINDS)}."
    raise SinkError(msg)


__all__ = ["KINDS", "Sink", "SinkError", "SinkUnavailable", "open_sink"]
