"""Checking audit hash chains (see :mod:`consent.audit_chain` for the design).

:class:`ChainVerifier` is pure: it is fed decoded audit records in each audit
partition's offset order and reports every problem with its position and chain, never
a record's content. ``sgb audit verify`` feeds it from Kafka.

Anchoring the tail while the filter may still be running: the committed heads are read
*before* the audit topic (``expect``), and reading goes on until every chain has reached
its head, which must be there with the same hash (otherwise the newest records were
removed or changed). Records beyond that head are fine when the filter committed them
meanwhile: the heads read again *after* reading (``check_heads``) must cover them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consent.audit_chain import GENESIS, Head, audit_partition, bytes_hash, hashed_body, record_hash


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the audit topic, where it is and what."""

    partition: int | None
    offset: int | None
    chain: str | None
    what: str

    def __str__(self) -> str:
        where = f"partition {'-' if self.partition is None else self.partition}"
        where += f" offset {self.offset}" if self.offset is not None else ""
        return f"{where} chain {self.chain or '-'}: {self.what}"


@dataclass(slots=True)
class _Tail:
    partition: int
    offset: int
    sequence: int
    record_hash: str


@dataclass(slots=True)
class ChainVerifier:
    """Checks the chains in audit records fed in each partition's offset order.

    Args:
        expected: the committed head of each chain, read before the records (optional).
        chains: the chain names that can exist (one per ingress partition of the cluster);
            a record under any other name is reported. None: not checked.
        audit_partitions: how many partitions the audit topic has, to check that each chain
            lives on the partition its name maps to. None: not checked.
        heads_checked: whether committed heads were read; then a chain with records but no
            committed head is reported (nothing anchors it).
        allow_legacy: accept unchained records that come before any chained record of their
            partition (audit written before chaining existed); otherwise each is reported.
    """

    expected: dict[str, Head] = field(default_factory=dict)
    chains: set[str] | None = None
    audit_partitions: int | None = None
    heads_checked: bool = False
    allow_legacy: bool = False
    problems: list[Problem] = field(default_factory=list)
    records: int = 0
    unchained: int = 0
    tails: dict[str, _Tail] = field(default_factory=dict)
    reached: dict[str, _Tail] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    misplaced: set[str] = field(default_factory=set)
    _chained_partitions: set[int] = field(default_factory=set)

    def feed(self, partition: int, offset: int, record: dict[str, Any], payload: bytes | None = None) -> None:
        """Check one record against what came before it in its chain.

        ``payload`` is the record's Avro binary as written (no framing): an AuditRecord's hash
        covers those bytes; an older AuditDecision's hash covers its decoded fields."""
        self.records += 1
        chain = record.get("chain")
        sequence = record.get("sequence")
        previous = record.get("previous_hash")
        stored = record.get("record_hash")
        if chain is None or sequence is None or previous is None or stored is None:
            self.unchained += 1
            legacy = self.allow_legacy and partition not in self._chained_partitions and chain is None
            if not legacy:
                self._problem(
                    partition,
                    offset,
                    chain,
                    "record carries no complete chain fields (chain, sequence, previous_hash, record_hash), "
                    "so nothing proves it was written by the filter",
                )
            return
        self._chained_partitions.add(partition)
        if chain not in self.counts:
            self._first_seen(partition, offset, str(chain))
        self.counts[chain] = self.counts.get(chain, 0) + 1
        if not self._hash_matches(record, payload, str(stored)):
            self._problem(
                partition,
                offset,
                chain,
                f"sequence {sequence}: content does not match its record_hash (record changed)",
            )
        tail = self.tails.get(chain)
        if tail is None:
            if sequence != 0 or previous != GENESIS:
                self._problem(
                    partition,
                    offset,
                    chain,
                    f"chain starts at sequence {sequence}, not 0 (earlier records missing)",
                )
        else:
            self._link(partition, offset, chain, int(sequence), str(previous), tail)
        # Carry on from this record, so one tampered record gives one or two lines, not a cascade;
        # a record from earlier in the chain (moved or repeated) does not take the chain back.
        here = _Tail(partition, offset, int(sequence), str(stored))
        if tail is None or sequence > tail.sequence:
            self.tails[chain] = here
        head = self.expected.get(chain)
        if head is not None and head.sequence == sequence and chain not in self.reached:
            self.reached[chain] = here

    @staticmethod
    def _hash_matches(record: dict[str, Any], payload: bytes | None, stored: str) -> bool:
        if "decisions" not in record:  # an AuditDecision, written before AuditRecord
            return record_hash(record) == stored
        body = hashed_body(payload, stored) if payload is not None else None
        return body is not None and bytes_hash(body) == stored

    def _first_seen(self, partition: int, offset: int, chain: str) -> None:
        if self.chains is not None and chain not in self.chains:
            self._problem(
                partition, offset, chain, "chain names no ingress partition of this cluster (fabricated)"
            )
        if self.audit_partitions:
            home = audit_partition(chain, self.audit_partitions)
            if home != partition:
                self.misplaced.add(chain)
                self._problem(
                    partition,
                    offset,
                    chain,
                    f"chain is on audit partition {partition}, but its name maps to {home}",
                )

    def report(self) -> list[tuple[str, int, int, int, str]]:
        """Every chain found: (chain, audit partition, records, last sequence, committed head state)."""
        out = []
        for chain, tail in sorted(self.tails.items()):
            head = self.expected.get(chain)
            if not self.heads_checked:
                state = "heads not checked"
            elif head is None or head.sequence < 0:
                state = "no committed head"
            else:
                state = f"committed head {head.sequence}" + (
                    " (misplaced)" if chain in self.misplaced else ""
                )
            out.append((chain, tail.partition, self.counts.get(chain, 0), tail.sequence, state))
        return out

    def _link(
        self, partition: int, offset: int, chain: str, sequence: int, previous: str, tail: _Tail
    ) -> None:
        if tail.partition != partition:
            self._problem(
                partition,
                offset,
                chain,
                f"chain continues here after partition {tail.partition} offset {tail.offset}",
            )
        if sequence == tail.sequence + 1:
            if previous != tail.record_hash:
                self._problem(
                    partition,
                    offset,
                    chain,
                    f"sequence {sequence}: previous_hash does not match sequence {tail.sequence} "
                    "(record changed or replaced)",
                )
        elif sequence > tail.sequence + 1:
            missing = sequence - tail.sequence - 1
            self._problem(
                partition,
                offset,
                chain,
                f"sequence {sequence} follows {tail.sequence}: {missing} record(s) missing or moved",
            )
        elif sequence == tail.sequence:
            self._problem(partition, offset, chain, f"sequence {sequence} repeats (record duplicated)")
        else:
            self._problem(
                partition,
                offset,
                chain,
                f"sequence {sequence} follows {tail.sequence} (out of order or chain restarted)",
            )

    def lagging(self) -> set[str]:
        """Chains whose expected head has not been read yet."""
        return {
            chain for chain, head in self.expected.items() if head.sequence >= 0 and chain not in self.reached
        }

    def check_heads(self, latest: dict[str, Head] | None = None) -> None:
        """Check each chain reached its expected head, with the head's hash, and (given the
        heads read again after reading) that no chain runs beyond what the group committed."""
        for chain, head in sorted(self.expected.items()):
            if head.sequence < 0:
                continue
            reached = self.reached.get(chain)
            tail = self.tails.get(chain)
            if reached is None and tail is None:
                self._problem(
                    None, None, chain, f"no records found; the committed head is sequence {head.sequence}"
                )
            elif reached is None and tail is not None:
                self._problem(
                    tail.partition,
                    tail.offset,
                    chain,
                    f"chain ends at sequence {tail.sequence} but the committed head is sequence "
                    f"{head.sequence}: {head.sequence - tail.sequence} newest record(s) missing",
                )
            elif reached is not None and reached.record_hash != head.record_hash:
                self._problem(
                    reached.partition,
                    reached.offset,
                    chain,
                    f"sequence {reached.sequence} does not match the committed head's hash "
                    "(newest record changed)",
                )
        if self.heads_checked:
            for chain, tail in sorted(self.tails.items()):
                anchor = self.expected.get(chain)
                if (anchor is None or anchor.sequence < 0) and not (latest and latest.get(chain)):
                    self._problem(
                        tail.partition,
                        tail.offset,
                        chain,
                        "chain has no committed head, so nothing anchors its records "
                        "(fabricated, or the filter group's offsets expired)",
                    )
        if latest is None:
            return
        for chain, tail in sorted(self.tails.items()):
            now = latest.get(chain)
            if now is not None and tail.sequence > now.sequence:
                self._problem(
                    tail.partition,
                    tail.offset,
                    chain,
                    f"chain runs to sequence {tail.sequence}, beyond the committed head {now.sequence}",
                )

    def undecodable(self, partition: int, offset: int, reason: str) -> None:
        """Note a record that could not be decoded (``reason`` must not quote its content)."""
        self.records += 1
        self._problem(partition, offset, None, f"record cannot be decoded: {reason}")

    def _problem(self, partition: int | None, offset: int | None, chain: str | None, what: str) -> None:
        self.problems.append(Problem(partition, offset, chain, what))
