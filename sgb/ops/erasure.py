"""``sgb erase``'s notices: an ``ERASED`` correction for every shared event of a child.

The filter's share ledger (``sg.shares.v1``) says which of the child's events were
delivered to whom. For each, an ``ERASED`` correction is published on the ingress topic of
the agency that sent it; the filter routes it to exactly the original's recipients
(POLICY.md principle 10), and their sinks drop the event's content. A notice carries no
content: its child is only the key it is routed by, its details are blank. Its event id is
derived from the erased one's, so running ``sgb erase`` again sends nothing twice (the
filter decides an event id once).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TopicPartition

from broker.clients import admin_client, consumer
from broker.exceptions import SgbError
from broker.settings import Settings
from broker.transactions import watermarks
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.corrections import ERASED, correction_notice
from connectors.runtime.publisher import EventPublisher
from connectors.runtime.records import uuid5_text
from schemas.topics import SHARES_TOPIC
from sgb.simulate.data import EVENT_AGENCY


def ledger(settings: Settings, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Every entry of the share ledger by event id, the newest revision of each, read to its end."""
    name = settings.topic(SHARES_TOPIC)
    topic = admin_client(settings).list_topics(name, timeout=10).topics.get(name)
    if topic is None or topic.error is not None:
        msg = f"Topic {name} does not exist; run `sgb topics apply`."
        raise SgbError(msg)
    codecs = Codecs(registry_for(settings))
    cons = consumer(settings, f"{settings.topic_prefix}sgb-ledger-reader")
    try:
        parts = [TopicPartition(name, p, -2) for p in topic.partitions]
        cons.assign(parts)
        ends = {tp.partition: watermarks(cons, tp)[1] for tp in parts}
        ends = {p: high for p, high in ends.items() if high > 0}
        out: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in cons.consume(500, timeout=0.5):
                if message.error() or message.value() is None:
                    continue
                entry = codecs.shares.decode(message.value())
                held = out.get(entry["event_id"])
                if held is None or held["revision"] <= entry["revision"]:
                    out[entry["event_id"]] = entry
            for tp in cons.position([TopicPartition(name, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
        if ends:
            msg = f"The share ledger could not be read to its end within {timeout:.0f} s."
            raise SgbError(msg)
        return out
    finally:
        cons.close()


def shared_events_of(entries: dict[str, dict[str, Any]], child: str) -> list[dict[str, Any]]:
    """The child's events that someone received and that are not erased yet (corrections excluded:
    erasing the original reaches every copy a recipient holds of it)."""
    return [
        entry
        for entry in entries.values()
        if entry["child_key"] == child
        and entry["recipients"]
        and entry.get("corrects_event_id") is None
        and entry.get("correction") != "ERASED"
    ]


def erasure_notice(entry: dict[str, Any], child: str, now: datetime) -> dict[str, Any]:
    """The ``ERASED`` correction of one ledger entry's event."""
    event_type = entry["event_type"]
    return correction_notice(
        event_id=uuid5_text(f"sgb-erase|{entry['event_id']}"),
        kind=ERASED,
        corrects_event_id=entry["event_id"],
        event_type=event_type,
        child_key=child,
        source={
            "agency": EVENT_AGENCY[event_type],
            "organisation": "sgb-erase",
            "organisation_name": "sgb erase",
            "system": "sgb-erase",
            "record_id": None,
            "contact": None,
        },
        at=now,
    )


def send_erasures(settings: Settings, child: str) -> int:
    """Publish an ``ERASED`` correction for each of the child's shared events; returns how many."""
    now = datetime.now(UTC)
    notices = [erasure_notice(e, child, now) for e in shared_events_of(ledger(settings), child)]
    publishers: dict[str, EventPublisher] = {}
    for notice in notices:
        agency = notice["source"]["agency"]
        publisher = publishers.get(agency) or publishers.setdefault(agency, EventPublisher(settings, agency))
        publisher.publish(notice)
    for publisher in publishers.values():
        publisher.flush()
    return len(notices)
