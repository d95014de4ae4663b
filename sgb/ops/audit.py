"""Verifying the audit topic's hash chains (:mod:`consent.audit_chain` says how they are made).

Reads the audit topic from the beginning (``read_committed``) through a
:class:`consent.audit_verify.ChainVerifier`: each record's hash recomputes, each record links
to the one before, sequences run on without gaps; where the filter group committed a chain
head, the chain must reach it with the same hash, so removed newest records are found too.
Problems name a partition, offset and chain, never a record's content.
"""

from __future__ import annotations

import io
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import fastavro
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from broker.clients import admin_client, consumer
from broker.exceptions import SchemaRegistryError, SerdeError, SgbError
from broker.security.provenance import FILTER_SIGNER, Verifier
from broker.security.signing_keys import KeyStore
from broker.settings import Settings
from broker.transactions import watermarks
from broker.wire.registry import registry_for
from broker.wire.serde import DECODE_ERRORS
from consent.audit_chain import Head, chain_name, head_signed_bytes
from consent.audit_verify import ChainVerifier, Problem
from schemas.topics import INGRESS_TOPICS

PROGRESS_EVERY_S = 5.0


def ingress_chains(settings: Settings) -> set[str]:
    """The chain names that can exist: one per partition of each ingress topic on the cluster."""
    admin = admin_client(settings)
    names: set[str] = set()
    for logical in INGRESS_TOPICS:
        topic = settings.topic(logical)
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None:
            names |= {chain_name(topic, p) for p in meta.partitions}
    return names


def unsigned_heads(settings: Settings, heads: dict[str, Head]) -> list[tuple[str, str]]:
    """(chain, reason) for each committed head whose signature is not a trusted filter key's."""
    verifier = Verifier(KeyStore(settings.keys_dir))
    out = []
    for chain, head in sorted(heads.items()):
        if head.sequence < 0:
            continue
        rejected = verifier.check_detached(
            FILTER_SIGNER, head.key_id, head_signed_bytes(chain, head), head.signature
        )
        if rejected is not None:
            out.append((chain, rejected.sentence))
    return out


def committed_heads(settings: Settings, group: str) -> dict[str, Any]:
    """The chain head the filter group committed for each ingress partition (none: not listed)."""
    # A consumer that never subscribes never joins the group: it only reads its offsets.
    cons = consumer(settings, group)
    try:
        wanted = []
        for logical in INGRESS_TOPICS:
            topic = settings.topic(logical)
            meta = cons.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.error is None:
                wanted += [TopicPartition(topic, p) for p in meta.partitions]
        heads = {}
        for tp in cons.committed(wanted, timeout=30) if wanted else []:
            head = Head.parse(tp.metadata)
            if head is not None:
                heads[chain_name(tp.topic, tp.partition)] = head
        return heads
    finally:
        cons.close()


class AsWritten:
    """Decodes a framed record with the schema it was written with, and no other.

    A record's hash covers the fields its writer set; decoding it into a newer reader schema
    would add or drop fields, so verification reads each record exactly as written.

    Args:
        registry: where the writer schemas are looked up by id.
    """

    __slots__ = ("_parsed", "_registry")

    def __init__(self, registry: Any) -> None:
        self._registry = registry
        self._parsed: dict[int, Any] = {}

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """The record as its writer wrote it; raises :class:`SerdeError` saying what is wrong."""
        if data is None or len(data) < 5:
            msg = "it is too short to carry the Avro framing"
            raise SerdeError(msg)
        magic, schema_id = struct.unpack_from(">bI", data)
        if magic != 0:
            msg = "it does not start with the Avro magic byte 0"
            raise SerdeError(msg)
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            try:
                parsed = self._parsed[schema_id] = fastavro.parse_schema(self._registry.schema(schema_id))
            except SchemaRegistryError:
                msg = f"its schema id {schema_id} is not registered"
                raise SerdeError(msg) from None
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[5:]), parsed, None)
        except DECODE_ERRORS as exc:
            msg = f"it is not valid Avro for schema id {schema_id} ({type(exc).__name__})"
            raise SerdeError(msg) from None
        if not isinstance(record, dict):
            msg = f"it decodes to a {type(record).__name__}, not a record"
            raise SerdeError(msg)
        return record


def _audit_partitions(cons: Any, topic: str) -> list[int]:
    meta = cons.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        msg = f"The audit topic {topic} does not exist on this cluster."
        raise SgbError(msg)
    return sorted(meta.partitions)


def verify(
    settings: Settings,
    topic: str,
    group: str | None,
    settle: float,
    progress: Callable[[int, int], None] | None = None,
    *,
    allow_legacy: bool = False,
) -> ChainVerifier:
    """Read ``topic`` from the beginning through a :class:`ChainVerifier`; returns the verifier."""
    heads = committed_heads(settings, group) if group else {}
    checker = ChainVerifier(
        expected=heads, chains=ingress_chains(settings), heads_checked=bool(group), allow_legacy=allow_legacy
    )
    for chain, reason in unsigned_heads(settings, heads):
        checker.problems.append(
            Problem(None, None, chain, f"committed head is not signed by a trusted filter key: {reason}")
        )
    decoder = AsWritten(registry_for(settings, read_only=True))
    cons = consumer(settings, f"sgb-audit-verify-{uuid.uuid4().hex[:12]}", **{"enable.partition.eof": True})
    try:
        partitions = _audit_partitions(cons, topic)
        checker.audit_partitions = len(partitions)
        ends = [watermarks(cons, TopicPartition(topic, p)) for p in partitions]
        total = sum(high - low for low, high in ends)
        cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        last_report = time.monotonic()
        settle_until: float | None = None
        while pending or checker.lagging():
            if not pending:
                # Every partition read to its end, but a committed head is not there yet: its
                # transaction's records may be a moment behind its offsets. Wait a little.
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() > settle_until:
                    break
            for msg in cons.consume(1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    raise KafkaException(err)
                partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
                try:
                    record = decoder.decode(msg.value())
                except SerdeError as exc:
                    checker.undecodable(partition, offset, str(exc))
                    continue
                checker.feed(partition, offset, record, bytes(msg.value() or b"")[5:])
            if progress is not None and time.monotonic() - last_report > PROGRESS_EVERY_S:
                progress(checker.records, total)
                last_report = time.monotonic()
    finally:
        cons.close()
    checker.check_heads(committed_heads(settings, group) if group else None)
    return checker
