"""Replaying dead letters after a fix: each at most once, to the topic it was read from.

Each dead letter's original bytes are re-produced with its original key (and, for a filter
dead letter, its original provenance headers, so it is verified again). The re-produced
record and a marker keyed by the dead letter's position (``<partition>:<offset>`` on the
compacted ``sg.dlq.replayed.v1``) are written in one Kafka transaction, so either both are
visible or neither, and a later run skips what the markers name. Dead letters from a
connector's source files have no origin topic: they are counted and skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from broker.clients import admin_client, producer
from broker.exceptions import SgbError
from broker.logs import get_logger
from broker.security.provenance import ProvenanceReason, Signer, allowed_signer
from broker.security.signing_keys import KeyStore
from broker.settings import Settings
from schemas.topics import DLQ_TOPIC, REPLAYED_TOPIC
from sgb.ops.status import DeadLetterView, dead_letters
from sgb.ops.topic_reads import read_to_end

MARKER_TOPIC = REPLAYED_TOPIC
BATCH = 100


def matches(reason: str, wanted: str | None) -> bool:
    """Whether a dead letter's reason contains ``wanted`` (any case); None matches all."""
    return wanted is None or wanted.lower() in reason.lower()


@dataclass
class ReplayPlan:
    """What a replay would do: the dead letters chosen, and how many were passed over and why."""

    chosen: list[DeadLetterView] = field(default_factory=list)
    already: int = 0
    from_source_files: int = 0
    without_payload: int = 0
    #: Chosen dead letters whose payload failed again after an earlier replay of the same bytes.
    failed_again: int = 0
    #: Unsigned events (the connector did not sign): the same bytes would fail again.
    unsigned: int = 0
    #: Events whose signature does not match or whose signer may not write there: never replayed.
    forged: int = 0
    #: Chosen dead letters that are signed again on replay (``sign_as``), by position.
    resign: set[tuple[int, int]] = field(default_factory=set)

    def summary(self) -> str:
        """The passed-over counts as one clause."""
        return (
            f"{self.already} already replayed, {self.from_source_files} from source files skipped, "
            f"{self.without_payload} without payload skipped."
        )


class Replayer:
    """Plans and sends one replay.

    Args:
        settings: how to reach Kafka.
        dry_run: plan only; no producer is made and nothing is sent.
    """

    def __init__(self, settings: Settings, *, dry_run: bool = False, sign_as: str | None = None) -> None:
        self.settings = settings
        self._prod: Any = None
        self.sign_as = sign_as
        self._signer: Signer | None = None
        if sign_as is not None:
            store = KeyStore(settings.keys_dir)
            if store.active_key_id(sign_as) is None:
                msg = (
                    f"There is no signing key for {sign_as} in {settings.keys_dir}: run the replay where that "
                    "agency's connector keeps its key (the filter must trust it)."
                )
                raise SgbError(msg)
            self._signer = Signer(store, sign_as)
        if not dry_run:
            # Fence any other replay first, so the markers read next cannot change under us.
            self._prod = producer(
                settings, transactional_id=f"sgb-dlq-replay-{settings.topic_prefix or 'default'}"
            )
            self._prod.init_transactions(30)

    def plan(self, reason: str | None = None) -> ReplayPlan:
        """The dead letters to replay (those whose reason contains ``reason``), not yet replayed."""
        done, digests = replay_markers(self.settings)
        plan = ReplayPlan()
        for d in dead_letters(self.settings, with_payload=True):
            if not matches(d.reason, reason):
                continue
            if f"{d.partition}:{d.offset}" in done:
                plan.already += 1
            elif not d.origin_topic:
                plan.from_source_files += 1
            elif d.payload is None:
                plan.without_payload += 1
            elif _code(d.reason) in FORGED:
                plan.forged += 1
            elif _code(d.reason) == ProvenanceReason.UNSIGNED:
                if self.sign_as is not None and allowed_signer(self.sign_as, self._logical(d.origin_topic)):
                    plan.resign.add((d.partition, d.offset))
                    plan.chosen.append(d)
                else:
                    plan.unsigned += 1
            else:
                plan.chosen.append(d)
        plan.failed_again = sum(1 for d in plan.chosen if payload_digest(d.payload) in digests)
        return plan

    def send(self, plan: ReplayPlan) -> int:
        """Replay what ``plan`` chose; returns how many were re-produced."""
        if self._prod is None:
            msg = "A dry run sends nothing."
            raise SgbError(msg)
        try:
            sent = _send(self.settings, self._prod, plan.chosen, self._resign(plan))
        finally:
            self._prod.flush(10)
        get_logger("broker.dlq").info(
            "dead letters replayed",
            replayed=sent,
            skipped=plan.from_source_files + plan.without_payload,
            count=plan.already,
        )
        return sent

    def _logical(self, topic: str) -> str:
        prefix = self.settings.topic_prefix
        return topic[len(prefix) :] if prefix and topic.startswith(prefix) else topic

    def _resign(self, plan: ReplayPlan) -> Callable[[DeadLetterView], list[tuple[str, bytes]]]:
        """The provenance headers each replayed dead letter carries: its own, or new ones."""

        def headers(d: DeadLetterView) -> list[tuple[str, bytes]]:
            if self._signer is None or (d.partition, d.offset) not in plan.resign:
                return list(d.provenance)
            return self._signer.headers(self._logical(d.origin_topic or ""), d.key, d.payload)

        return headers


#: Provenance failures that mean the bytes or their signer are not what they claim: replaying
#: them would only launder a forgery, so they are never replayed.
FORGED = frozenset({ProvenanceReason.BAD_SIGNATURE.value, ProvenanceReason.SIGNER_NOT_ALLOWED.value})


def _code(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def replay_markers(settings: Settings) -> tuple[set[str], set[str]]:
    """Positions (``partition:offset``) already replayed, and the digests of their payloads."""
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


def payload_digest(payload: bytes | None) -> str:
    return hashlib.sha256(payload or b"").hexdigest()


def _send(
    settings: Settings,
    prod: Any,
    chosen: list[DeadLetterView],
    provenance: Callable[[DeadLetterView], list[tuple[str, bytes]]],
) -> int:
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
                    headers=[("sgb.replayed_from", where.encode()), *provenance(d)],
                )
                marker = {
                    "replayed_at": datetime.now(UTC).isoformat(),
                    "origin": d.origin,
                    "dead_letter": where,
                    "sha256": payload_digest(d.payload),
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
