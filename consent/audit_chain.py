"""Tamper-evident audit: one hash chain per ingress partition (issue 9, part 6).

Design
------
* **One chain per ingress partition.** Exactly one filter process owns an ingress
  partition at a time, and Kafka transactions fence a previous owner that has not noticed
  it lost the partition (KIP-447: the offsets are committed with the group's generation).
  So one writer extends a chain at a time, in the order it consumes the partition. The
  chain is named ``<ingress topic>:<partition>`` (the physical topic name).
* **Each record links to the one before.** Every audit record carries ``chain``,
  ``sequence`` (0, 1, 2, ... within the chain), ``previous_hash`` (the ``record_hash`` of
  the record before; 64 zeros for the first) and ``record_hash``: SHA-256 over a
  canonical encoding of every other field of the record (see :func:`record_hash`), which
  includes ``chain``, ``sequence`` and ``previous_hash``. Changing, removing or moving a
  record breaks a hash, a link or the run of sequences.
* **A chain lives in one audit partition.** Its records are written to the audit partition
  :func:`audit_partition` derives from the chain's name (the Kafka key stays the event
  id), so the chain's order is the partition's offset order and a reader checks it in one
  pass. Several chains interleave in one audit partition. The audit topic's partition
  count must therefore not change (``deploy/topics.yaml``).
* **The chain head travels with the consumed offsets.** The head (last sequence and hash)
  is the metadata of the ingress offset that ``send_offsets_to_transaction`` commits in
  the same transaction as the audit records: either both are visible or neither, so the
  head can never get ahead of or behind the records. A process that is assigned a
  partition reads the head back with ``committed()`` (``read_committed`` waits for a
  pending transaction of the previous owner), so the chain continues across rebalances,
  restarts and crashes without forking. A batch's advances are kept aside and only become
  the head when the transaction commits; after an aborted batch every head is read again
  from the committed offsets, and a head that was not read fails the batch rather than
  being guessed (a guess would fork the chain).
* **The committed head anchors the tail.** ``sgb audit verify`` checks every link and,
  where the filter group's committed metadata names a head, that the chain reaches it with
  the same hash, so removing the newest records is detected too. Verification decodes each
  record with the schema it was written with, so the hash covers exactly what was written.

Limits: the hash is not keyed, so someone able to rewrite the whole audit partition *and*
the filter group's committed offsets could forge a consistent history; the group's
offsets are the anchor. If the group's offsets expire (the group idle past
``offsets.retention.minutes``), the next owner starts the chain again at sequence 0,
which verification reports. Null fields are left out of the hash, so a reader that decodes
an older record into a newer schema (whose new fields default to null) gets the same hash.
Cost: sealing a record (a JSON encoding and one SHA-256) is some tens of microseconds.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from confluent_kafka import TopicPartition

GENESIS = "0" * 64
CHAIN_FIELDS = ("chain", "sequence", "previous_hash", "record_hash")
METADATA_PREFIX = "sgb-audit:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Head:
    """The last record of a chain: its sequence (-1 for an empty chain) and hash."""

    sequence: int = -1
    record_hash: str = GENESIS

    def metadata(self) -> str:
        """The head as offset-commit metadata."""
        return f"{METADATA_PREFIX}{self.sequence}:{self.record_hash}"

    @classmethod
    def parse(cls, metadata: str | None) -> Head | None:
        """The head in offset-commit metadata, or None when there is none (or it is not ours)."""
        if not metadata or not metadata.startswith(METADATA_PREFIX):
            return None
        sequence, _, digest = metadata[len(METADATA_PREFIX):].partition(":")
        try:
            number = int(sequence)
        except ValueError:
            return None
        if len(digest) != 64 or number < -1:
            return None
        return cls(number, digest)


def chain_name(topic: str, partition: int) -> str:
    """The chain of an ingress partition."""
    return f"{topic}:{partition}"


def audit_partition(chain: str, partitions: int) -> int:
    """The audit partition every record of ``chain`` goes to (stable across processes)."""
    return zlib.crc32(chain.encode()) % partitions


def _millis(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _millis(value)
    if isinstance(value, Enum):
        return value.value
    msg = f"Audit record value of type {type(value).__name__} has no canonical form."
    raise TypeError(msg)


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: every field but ``record_hash`` whose value is not
    null, as compact JSON with sorted keys (timestamps as epoch milliseconds)."""
    content = {k: v for k, v in record.items() if k != "record_hash" and v is not None}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_plain).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the record's canonical encoding."""
    return hashlib.sha256(b"sgb.audit.v1\n" + canonical(record)).hexdigest()


class AuditChains:
    """The chain heads of the ingress partitions this process owns, and a batch's advances.

    Usage per batch: :meth:`begin` (loads the heads of newly owned partitions), :meth:`seal`
    each audit record in order, :meth:`offsets` to put the heads in the offset commit,
    then :meth:`commit` once the transaction has committed (or :meth:`begin` the redo).
    """

    __slots__ = ("_heads", "_pending", "partitions")

    def __init__(self, partitions: int = 0) -> None:
        self._heads: dict[str, Head] = {}
        self._pending: dict[str, Head] = {}
        self.partitions = partitions

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop the heads of partitions assigned or revoked: a new owner reads them again."""
        for tp in partitions:
            self._heads.pop(chain_name(tp.topic, tp.partition), None)

    def begin(self, consumer: Any, positions: Iterable[tuple[str, int]], audit_topic: str,
              timeout: float = 30.0) -> None:
        """Start a batch over ``positions`` (ingress topic, partition): forget any earlier
        uncommitted advances and read the committed head of each partition not yet known."""
        self._pending.clear()
        if not self.partitions:
            metadata = consumer.list_topics(audit_topic, timeout=timeout).topics[audit_topic]
            self.partitions = len(metadata.partitions)
            if not self.partitions:
                msg = f"The audit topic {audit_topic} has no partitions."
                raise LookupError(msg)
        unknown = self.unknown(positions)
        if unknown:
            self.learn(consumer.committed([TopicPartition(t, p) for t, p in unknown], timeout=timeout))

    def unknown(self, positions: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """The partitions among ``positions`` whose head has not been read since assignment."""
        return sorted({(t, p) for t, p in positions
                       if t is not None and p >= 0 and chain_name(t, p) not in self._heads})

    def learn(self, committed: Iterable[TopicPartition]) -> None:
        """Take the heads from committed offsets (no head in the metadata: an empty chain)."""
        for tp in committed:
            self._heads[chain_name(tp.topic, tp.partition)] = Head.parse(tp.metadata) or Head()

    def head(self, topic: str, partition: int) -> Head:
        """The chain's head including this batch's advances.

        Raises LookupError when the head was not read (see :meth:`begin`): guessing would fork
        the chain, so the batch fails instead and is redone.
        """
        chain = chain_name(topic, partition)
        head = self._pending.get(chain) or self._heads.get(chain)
        if head is None:
            msg = f"The audit chain head of {chain} was not read before use."
            raise LookupError(msg)
        return head

    def seal(self, record: dict[str, Any], topic: str, partition: int) -> tuple[dict[str, Any], int]:
        """Link ``record`` (an AuditDecision) into the chain of ingress ``topic``/``partition``.

        Returns the record with its chain fields set, and the audit partition to write it to.
        """
        chain = chain_name(topic, partition)
        head = self.head(topic, partition)
        sealed = dict(record)
        for name, value in record.items():
            if isinstance(value, datetime):  # the topic keeps milliseconds: hash what a reader decodes
                sealed[name] = value.replace(microsecond=value.microsecond // 1000 * 1000)
        sealed.update(chain=chain, sequence=head.sequence + 1, previous_hash=head.record_hash,
                      record_hash=None)
        sealed["record_hash"] = record_hash(sealed)
        self._pending[chain] = Head(sealed["sequence"], sealed["record_hash"])
        return sealed, audit_partition(chain, self.partitions)

    def offsets(self, offsets: Iterable[TopicPartition]) -> list[TopicPartition]:
        """The offsets to commit, each carrying its partition's head as metadata."""
        return [TopicPartition(tp.topic, tp.partition, tp.offset,
                               metadata=self.head(tp.topic, tp.partition).metadata())
                if tp.topic is not None and tp.partition >= 0 else tp for tp in offsets]

    def commit(self) -> None:
        """The batch's transaction committed: its advances become the heads."""
        self._heads.update(self._pending)
        self._pending.clear()

    def abort(self) -> None:
        """The batch's transaction was aborted: forget its advances, and read every head again
        from the committed offsets before the batch is redone (they are the truth)."""
        self._pending.clear()
        self._heads.clear()
