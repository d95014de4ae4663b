"""The audit chain heads of the ingress partitions a filter process owns, kept in Kafka's
offset commits (the chain itself and its canonical form: :mod:`consent.audit_chain`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import TopicPartition

from consent.audit_chain import Head, audit_partition, bytes_hash, chain_name, head_signed_bytes

#: Signs bytes with the filter's key: (key id, signature).
HeadSigner = Callable[[bytes], tuple[str, bytes]]
#: Writes an audit record's Avro bytes up to its record_hash, given its chain fields.
BodyWriter = Callable[[dict[str, Any]], bytes]


class AuditChains:
    """The chain heads of the ingress partitions this process owns, and a batch's advances.

    Usage per batch: :meth:`begin` (loads the heads of newly owned partitions), :meth:`link`
    each audit record in order, :meth:`offsets` to put the heads in the offset commit,
    then :meth:`commit` once the transaction has committed (or :meth:`begin` the redo).
    """

    __slots__ = ("_heads", "_pending", "_sign", "partitions")

    def __init__(self, partitions: int = 0, sign: HeadSigner | None = None) -> None:
        self._heads: dict[str, Head] = {}
        self._pending: dict[str, Head] = {}
        self.partitions = partitions
        self._sign = sign

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop the heads of partitions assigned or revoked: a new owner reads them again."""
        for tp in partitions:
            self._heads.pop(chain_name(tp.topic, tp.partition), None)

    def begin(
        self, consumer: Any, positions: Iterable[tuple[str, int]], audit_topic: str, timeout: float = 30.0
    ) -> None:
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
        return sorted(
            {(t, p) for t, p in positions if t is not None and p >= 0 and chain_name(t, p) not in self._heads}
        )

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

    def link(self, write: BodyWriter, topic: str, partition: int) -> tuple[bytes, str, int]:
        """Link the next audit record into the chain of ingress ``topic``/``partition``.

        ``write`` is given the record's chain fields (chain, sequence, previous_hash) and
        returns its Avro bytes up to ``record_hash`` (:func:`consent.audit_chain.bytes_hash`
        hashes them). Returns those bytes, the record_hash and the audit partition to write to.
        """
        chain = chain_name(topic, partition)
        head = self.head(topic, partition)
        sequence = head.sequence + 1
        body = write({"chain": chain, "sequence": sequence, "previous_hash": head.record_hash})
        digest = bytes_hash(body)
        self._pending[chain] = Head(sequence, digest)
        return body, digest, audit_partition(chain, self.partitions)

    def offsets(self, offsets: Iterable[TopicPartition]) -> list[TopicPartition]:
        """The offsets to commit, each carrying its partition's head as metadata."""
        return [
            TopicPartition(
                tp.topic, tp.partition, tp.offset, metadata=self._signed(tp.topic, tp.partition).metadata()
            )
            if tp.topic is not None and tp.partition >= 0
            else tp
            for tp in offsets
        ]

    def _signed(self, topic: str, partition: int) -> Head:
        head = self.head(topic, partition)
        if self._sign is None or head.sequence < 0:
            return head
        key_id, signature = self._sign(head_signed_bytes(chain_name(topic, partition), head))
        return head.signed(key_id, signature)

    def commit(self) -> None:
        """The batch's transaction committed: its advances become the heads."""
        self._heads.update(self._pending)
        self._pending.clear()

    def abort(self) -> None:
        """The batch's transaction was aborted: forget its advances, and read every head again
        from the committed offsets before the batch is redone (they are the truth)."""
        self._pending.clear()
        self._heads.clear()
