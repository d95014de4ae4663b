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
  the record before; 64 zeros for the first) and ``record_hash``. An ``AuditRecord`` (one
  per event, every decision on it) is hashed over its own encoded bytes: ``record_hash`` is
  its last field, and SHA-256 covers the Avro binary before it (every other field,
  ``chain``, ``sequence`` and ``previous_hash`` included; :func:`bytes_hash`), so sealing
  costs one hash of bytes the filter writes anyway, and a reader checks exactly what was
  written. The older ``AuditDecision`` records (one per decision, still read) were hashed
  over a canonical JSON encoding of their fields (:func:`record_hash`); one chain may hold
  both, older first. Changing, removing or moving a record breaks a hash, a link or the run
  of sequences.
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

* **The head is signed.** The filter signs each head it commits with its signing key
  (Ed25519, signer ``filter``; :func:`head_signed_bytes` says what is signed), and
  ``sgb audit verify`` checks that signature against the trust store. Someone able to
  write the audit topic *and* the group's offsets can no longer rewrite history: a
  consistent forged chain would need a head only the filter's key can sign. Verify also
  checks that each chain names a real ingress partition and lives on the audit partition
  its name maps to, so records appended under a made-up chain are reported.

Limits: if the group's offsets expire (the group idle past
``offsets.retention.minutes``), the next owner starts the chain again at sequence 0,
which verification reports. Null fields are left out of the hash, so a reader that decodes
an older AuditDecision into a newer schema (whose new fields default to null) gets the same
hash. Cost: sealing an AuditRecord is one SHA-256 over some hundreds of bytes (microseconds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

GENESIS = "0" * 64
CHAIN_FIELDS = ("chain", "sequence", "previous_hash", "record_hash")
METADATA_PREFIX = "sgb-audit:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Head:
    """The last record of a chain: its sequence (-1 for an empty chain) and hash, and the
    signature over them (:func:`head_signed_bytes`) by the key ``key_id``, when signed."""

    sequence: int = -1
    record_hash: str = GENESIS
    key_id: str | None = None
    signature: bytes | None = None

    def metadata(self) -> str:
        """The head as offset-commit metadata (``sgb-audit:<seq>:<hash>[:<key id>:<signature>]``)."""
        text = f"{METADATA_PREFIX}{self.sequence}:{self.record_hash}"
        if self.key_id and self.signature:
            text += f":{self.key_id}:{base64.urlsafe_b64encode(self.signature).decode()}"
        return text

    def signed(self, key_id: str, signature: bytes) -> Head:
        """This head with its signature."""
        return Head(self.sequence, self.record_hash, key_id, signature)

    @classmethod
    def parse(cls, metadata: str | None) -> Head | None:
        """The head in offset-commit metadata, or None when there is none (or it is not ours)."""
        if not metadata or not metadata.startswith(METADATA_PREFIX):
            return None
        parts = metadata[len(METADATA_PREFIX) :].split(":")
        if len(parts) not in (2, 4):
            return None
        try:
            number = int(parts[0])
            signature = base64.urlsafe_b64decode(parts[3]) if len(parts) == 4 else None
        except (ValueError, binascii.Error):
            return None
        digest = parts[1]
        if len(digest) != 64 or number < -1:
            return None
        return cls(number, digest, parts[2] if len(parts) == 4 else None, signature)


def head_signed_bytes(chain: str, head: Head) -> bytes:
    """What the filter signs for a chain's head: the chain's name, sequence and hash."""
    return f"sgb.audit.head.v1\n{chain}\n{head.sequence}\n{head.record_hash}".encode()


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
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    ).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of an older AuditDecision record's canonical encoding."""
    return hashlib.sha256(b"sgb.audit.v1\n" + canonical(record)).hexdigest()


def bytes_hash(body: bytes) -> str:
    """SHA-256 (hex) of an AuditRecord: over its Avro binary up to ``record_hash`` (no framing)."""
    return hashlib.sha256(b"sgb.audit.v2\n" + body).hexdigest()


# Avro writes a string as its zig-zag length and its bytes: 64 hex digits are b"\x80\x01" + 64.
_HASH_LENGTH = b"\x80\x01"


def hashed_body(payload: bytes, stored: str) -> bytes | None:
    """What an AuditRecord's hash covers, from the record's Avro binary ``payload`` (no
    framing): everything before its trailing ``record_hash``. None when the payload does not
    end with the ``stored`` hash (it is not the last field, or the record was changed)."""
    tail = _HASH_LENGTH + stored.encode()
    if len(stored) != 64 or not payload.endswith(tail):
        return None
    return payload[: -len(tail)]
