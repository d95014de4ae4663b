"""``sgb identity``: a person in the loop of the child index (POLICY.md principle 11).

``review`` lists the pairs waiting for a person (identifiers, score band, match weight and
the names of the fields that agreed; never the demographics); ``link`` and ``unlink``
record a decision on the compacted link topic, where every filter process reads it.
Undoing a link lists the shares the audit says were made relying on it, so the MASH can act.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Message

from broker.clients import admin_client, producer
from broker.exceptions import SgbError
from broker.logs import get_logger
from broker.security.ciphers import child_namer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from consent.identity import ChildIndex, Link
from consent.identity.links import LINKED, UNLINKED
from schemas.child_keys import CHILD_KEY
from schemas.topics import AUDIT_TOPIC, IDENTITY_LINKS_TOPIC
from sgb.ops.topic_reads import read_to_end

log = get_logger("sgb.identity")


def _read(settings: Settings, logical: str, on_message: Callable[[Message], None]) -> None:
    name = settings.topic(logical)
    topic = admin_client(settings).list_topics(name, timeout=10).topics.get(name)
    if topic is None or topic.error is not None:
        msg = f"Topic {name} does not exist; run `sgb topics apply`."
        raise SgbError(msg)
    read_to_end(settings, {(name, p): OFFSET_BEGINNING for p in topic.partitions}, on_message)


def current_index(settings: Settings, codecs: Codecs | None = None) -> ChildIndex:
    """The child index as the link topic holds it now."""
    codecs = codecs or Codecs(registry_for(settings))
    index = ChildIndex()

    def apply(msg: Message) -> None:
        if msg.value() is not None:
            index.apply(Link.from_record(codecs.identity_link.decode(msg.value())))

    _read(settings, IDENTITY_LINKS_TOPIC, apply)
    return index


def review(settings: Settings, local_authority_code: str | None) -> list[Link]:
    """The candidates waiting for a person, for one authority (every authority when None)."""
    return current_index(settings).candidates(local_authority_code)


@dataclass(frozen=True, slots=True)
class Decided:
    """What ``link`` or ``unlink`` recorded, and for an unlink the shares made relying on it."""

    link: Link
    shares: tuple[dict[str, Any], ...] = ()
    still_linked: bool = False


def _checked(key: str) -> str:
    if not CHILD_KEY.match(key):
        msg = "An identifier must be a child key: nhs:<10 digits>, la:<la>:<id>, police:<ref>, upn:<upn> or lpi:<ods>:<id>."
        raise SgbError(msg)
    return key


def decide(settings: Settings, a: str, b: str, *, linked: bool, reason: str, operator: str) -> Decided:
    """Record an operator's link or unlink of two identifiers, with the reason.

    Raises:
        SgbError: a malformed identifier, an empty reason, or an unlink of a pair never linked.
    """
    name = child_namer(settings)  # with field encryption on, the link topic holds pseudonyms only
    a, b = name(_checked(a)), name(_checked(b))
    if a == b:
        msg = "The two identifiers are the same; a link joins two different ones."
        raise SgbError(msg)
    if not reason.strip():
        msg = "Give a --reason: every link and unlink is on record with why."
        raise SgbError(msg)
    codecs = Codecs(registry_for(settings))
    index = current_index(settings, codecs)
    before = index.pair(a, b)
    if not linked and (before is None or before.state != LINKED):
        msg = f"Link {Link.between(a, b, state='', rule='', band='').link_id} is not in force; nothing to unlink."
        raise SgbError(msg)
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "reason": reason.strip(),
        "decided_by": operator,
        "recorded_at": now,
        "event_id": None,
    }
    if linked:  # a person's link: on the evidence they reviewed (the candidate's score, if any)
        link = Link.between(
            a, b, state=LINKED, rule="OPERATOR", band="CONFIRMED",
            match_weight=before.match_weight if before else None,
            agreed_fields=before.agreed_fields if before else (),
            local_authority_code=before.local_authority_code if before else None, **fields,
        )  # fmt: skip
    else:  # the pair is kept with the evidence that was undone, and never linked again automatically
        assert before is not None
        link = before.superseded(UNLINKED, **fields)
    prod = producer(settings)
    prod.produce(
        settings.topic(IDENTITY_LINKS_TOPIC),
        key=link.link_id.encode(),
        value=codecs.identity_link.encode(link.record()),
    )
    if prod.flush(30):
        msg = "The decision could not be written to the link topic within 30 s; nothing was recorded."
        raise SgbError(msg)
    log.info("identity decision recorded", link_id=link.link_id, state=link.state, operator=operator)
    if linked:
        return Decided(link)
    index.apply(link)
    return Decided(link, tuple(shares_on(settings, link.link_id, codecs)), b in index.cluster(a)[0])


def shares_on(settings: Settings, lid: str, codecs: Codecs | None = None) -> list[dict[str, Any]]:
    """The audit's shares that relied on link ``lid``: event, audience, organisation, when."""
    codecs = codecs or Codecs(registry_for(settings))
    found: list[dict[str, Any]] = []

    def note(msg: Message) -> None:
        for record in codecs.audit.decisions(msg.value()):  # one record per event, or older: per decision
            relied = record.get("identity_links") or ()
            if record["outcome"] == "SHARE" and any(link["link_id"] == lid for link in relied):
                found.append(
                    {
                        k: record[k]
                        for k in ("event_id", "event_type", "audience", "organisation", "decided_at")
                    }
                )

    _read(settings, AUDIT_TOPIC, note)
    return found
