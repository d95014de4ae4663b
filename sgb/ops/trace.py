"""``sgb audit trace EVENT_ID``: who received an event, and were they told of its corrections.

Read from the audit topic (metadata only: audiences, organisations, outcomes, rules, times,
the correction each recipient was told of), never from the events themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from confluent_kafka import Message

from broker.clients import admin_client
from broker.exceptions import SerdeError
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.topics import AUDIT_TOPIC
from sgb.ops.topic_reads import partition_ends, read_to_end


def trace(records: Iterable[dict[str, Any]], event_id: str) -> dict[str, Any]:
    """The trace of ``event_id`` from audit records: its decisions, the identity links they
    relied on (id, rule, band), and per recipient the corrections it was told of, oldest first."""
    decisions: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    told: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        if record["event_id"] == event_id and not record.get("correction"):
            links = links or list(record.get("identity_links") or ())
            decisions.append(
                {
                    "audience": record["audience"],
                    "organisation": record["organisation"],
                    "outcome": record["outcome"],
                    "reason": record["reason"],
                    "rule": record["rule"],
                    "decided_at": _iso(record["decided_at"]),
                }
            )
        elif record.get("corrects_event_id") == event_id:
            told.setdefault((record["audience"], record["organisation"]), []).append(
                {
                    "correction": record["correction"],
                    "correction_event_id": record["event_id"],
                    "decided_at": _iso(record["decided_at"]),
                }
            )
    recipients = [
        {
            "audience": d["audience"],
            "organisation": d["organisation"],
            "told": told.get((d["audience"], d["organisation"]), []),
        }
        for d in decisions
        if d["outcome"] == "SHARE"
    ]
    # The identity links the decisions relied on (for a source's merge: the links it made).
    return {"event_id": event_id, "decisions": decisions, "identity_links": links, "recipients": recipients}


def read_trace(settings: Settings, event_id: str) -> dict[str, Any]:
    """Read the audit topic from its start to its end and trace ``event_id``."""
    topic = settings.topic(AUDIT_TOPIC)
    ends = partition_ends(settings, admin_client(settings))
    start = {(t, p): low for (t, p), (low, high) in ends.items() if t == topic and high > low}
    codecs = Codecs(registry_for(settings, read_only=True))
    records: list[dict[str, Any]] = []

    def keep(msg: Message) -> None:
        try:
            decisions = codecs.audit.decisions(msg.value())  # one record per event, or older: per decision
        except SerdeError:
            return
        records.extend(d for d in decisions if event_id in (d["event_id"], d.get("corrects_event_id")))

    read_to_end(settings, start, keep)
    return trace(records, event_id)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
