"""``sgb erase``'s notices: an ``ERASED`` correction for every shared event of a child.

The filter's share ledger (``sg.shares.v1``) says which of the child's events were
delivered to whom. For each, an ``ERASED`` correction is published on the ingress topic of
the agency that sent it; the filter routes it to exactly the original's recipients
(POLICY.md principle 10), and their sinks drop the event's content. A notice carries no
content: its child is only the key it is routed by (with field encryption on, not even
that: the message key, the child's pseudonym, routes it), its details are blank. Its event
id is derived from the erased one's, so running ``sgb erase`` again sends nothing twice (the
filter decides an event id once). :func:`forget_compacted` tombstones what the compacted
topics keep of the child.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from broker.clients import admin_client, flush_or_raise, producer
from broker.exceptions import SgbError
from broker.security.ciphers import child_namer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.corrections import ERASED, correction_notice
from connectors.runtime.event_builder import CHILD_FIELDS
from connectors.runtime.publisher import EventPublisher
from connectors.runtime.records import uuid5_text
from schemas.child_keys import consent_child_key
from schemas.topics import CONSENT_TOPIC, IDENTITY_LINKS_TOPIC, SHARES_TOPIC, STATUS_TOPIC
from sgb.ops.topic_reads import partition_ends, read_to_end
from sgb.simulate.data import EVENT_AGENCY


def latest(settings: Settings, logical: str, timeout: float = 60.0) -> list[tuple[bytes, bytes | None]]:
    """Every keyed ``(key, value)`` on ``logical`` read to its current end, in offset order per
    partition (a tombstone's value is None)."""
    name = settings.topic(logical)
    ends = partition_ends(settings, admin_client(settings))
    if not any(topic == name for topic, _ in ends):
        msg = f"Topic {name} does not exist; run `sgb topics apply`."
        raise SgbError(msg)
    out: list[tuple[bytes, bytes | None]] = []

    def keep(message: Any) -> None:
        key = message.key()
        if key:
            out.append((key, message.value()))

    start = {pos: low for pos, (low, end) in ends.items() if pos[0] == name and end > low}
    read_to_end(settings, start, keep, timeout)
    return out


def ledger(settings: Settings, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Every entry of the share ledger by event id, the newest revision of each, read to its end."""
    codecs = Codecs(registry_for(settings))
    out: dict[str, dict[str, Any]] = {}
    for _, value in latest(settings, SHARES_TOPIC, timeout):
        if value is None:
            continue
        entry = codecs.shares.decode(value)
        held = out.get(entry["event_id"])
        if held is None or held["revision"] <= entry["revision"]:
            out[entry["event_id"]] = entry
    return out


def shared_events_of(entries: dict[str, dict[str, Any]], names: Collection[str]) -> list[dict[str, Any]]:
    """The child's events (ledger entries naming the child by any of ``names``: its key, or its
    pseudonym with field encryption on) that someone received and that are not erased yet
    (corrections excluded: erasing the original reaches every copy a recipient holds of it)."""
    return [
        entry
        for entry in entries.values()
        if entry["child_key"] in names
        and entry["recipients"]
        and entry.get("corrects_event_id") is None
        and entry.get("correction") != "ERASED"
    ]


def erasure_notice(
    entry: dict[str, Any], child: str, now: datetime, *, anonymous: bool = False
) -> dict[str, Any]:
    """The ``ERASED`` correction of one ledger entry's event. An ``anonymous`` notice names no
    identifier at all (field encryption on): its message key, the child's pseudonym, routes it."""
    event_type = entry["event_type"]
    notice = correction_notice(
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
    if anonymous:
        notice["child"] = dict.fromkeys(CHILD_FIELDS)
    return notice


def send_erasures(settings: Settings, child: str) -> int:
    """Publish an ``ERASED`` correction for each of the child's shared events; returns how many."""
    now = datetime.now(UTC)
    anonymous = settings.field_encryption == "on"
    names = {child, child_namer(settings)(child)}
    notices = [
        erasure_notice(e, child, now, anonymous=anonymous) for e in shared_events_of(ledger(settings), names)
    ]
    publishers: dict[str, EventPublisher] = {}
    for notice in notices:
        agency = notice["source"]["agency"]
        publisher = publishers.get(agency) or publishers.setdefault(agency, EventPublisher(settings, agency))
        publisher.publish(notice, child=child if anonymous else None)
    for publisher in publishers.values():
        publisher.flush()
    return len(notices)


def forget_compacted(settings: Settings, child: str) -> int:
    """Tombstone what the compacted topics keep of the child, so compaction removes it: its
    status records, the identity links of every identifier linked to it (and their status),
    and its consent records. Returns how many tombstones were written.

    With field encryption on these records name the child only by pseudonyms, so this is
    hygiene; with it off, a compacted topic keeps its older records until the log cleaner
    rewrites the segment, and the tombstones themselves for ``delete.retention.ms``."""
    name = child_namer(settings)
    codecs = Codecs(registry_for(settings))
    links = [codecs.identity_link.decode(v) for _, v in latest(settings, IDENTITY_LINKS_TOPIC) if v]
    cluster = {child, name(child)}
    grew = True
    while grew:  # every identifier linked to the child, however far
        grew = False
        for link in links:
            pair = {link["child_key_a"], link["child_key_b"]}
            if link["state"] == "LINKED" and pair & cluster and not pair <= cluster:
                cluster |= pair
                grew = True
    doomed: dict[tuple[str, bytes], bool] = {}
    for link in links:
        if {link["child_key_a"], link["child_key_b"]} & cluster:
            doomed[(IDENTITY_LINKS_TOPIC, str(link["link_id"]).encode())] = True
    for key, value in latest(settings, STATUS_TOPIC):
        if key.decode(errors="replace") in cluster:
            doomed[(STATUS_TOPIC, key)] = value is not None
    for key, value in latest(settings, CONSENT_TOPIC):
        record = codecs.consent.decode(value) if value is not None else None
        of = consent_child_key(record) if record is not None else None
        if of is not None and (of in cluster or name(of) in cluster):
            doomed[(CONSENT_TOPIC, key)] = True
        elif value is None and (CONSENT_TOPIC, key) in doomed:
            doomed[(CONSENT_TOPIC, key)] = False  # already a tombstone
    out = producer(settings)
    written = 0
    for (topic, key), live in doomed.items():
        if live:
            out.produce(settings.topic(topic), key=key, value=None)
            written += 1
    flush_or_raise(out, 30.0, "writing erasure tombstones")
    return written
