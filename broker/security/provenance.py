"""Provenance: each message says who produced it, proven by an Ed25519 signature in its headers.

Connectors sign what they publish to their agency's ingress topic; the filter verifies
each ingress event before deciding anything (a failure is a dead letter, nothing is
shared) and signs each delivery it produces; hubs verify each delivery before it reaches
their sink. On by ``SGB_PROVENANCE=on`` (off by default).

What is signed: a domain tag, the *logical* topic (without ``SGB_TOPIC_PREFIX``), the
message key and the exact value bytes, each length-prefixed. Signing the topic means a
correctly signed message copied to another topic (a police event replayed onto health
ingress, a delivery copied to another school's topic) no longer verifies. The headers are
``sgb.key_id`` (ASCII) and ``sgb.signature`` (the 64-byte signature in standard base64, 88
ASCII characters, readable in kcat and Kafka UIs; the 64 raw bytes of earlier releases are
still accepted for one release).

Which signer may write which topic: ``sg.ingress.<agency>.v1`` only the agency's own
signers (``police`` or ``police.<organisation>``); ``sg.deliver.*`` only ``filter``.
Keys rotate by key id (:mod:`broker.security.signing_keys`): verifiers re-read the trust store
when it changes, so old and new keys are both accepted, without a restart, until the old
one is retired.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.security.signing_keys import FILTER_SIGNER as FILTER_SIGNER
from broker.security.signing_keys import DirectoryWatch, KeyStore, TrustedKey, check_signer
from broker.settings import Settings
from schemas.topics import DELIVERY_PREFIX, INGRESS_PREFIX

KEY_ID_HEADER = "sgb.key_id"
SIGNATURE_HEADER = "sgb.signature"
RAW_SIGNATURE_SIZE = 64  # Ed25519
DOMAIN = b"sgb.provenance.v1"

Headers = Sequence[tuple[str, Any]] | Mapping[str, Any] | None


class ProvenanceReason(StrEnum):
    """Why a message's provenance was not accepted (the first word of its dead-letter reason)."""

    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    RETIRED_KEY = "retired_key"
    SIGNER_NOT_ALLOWED = "signer_not_allowed"
    BAD_SIGNATURE = "bad_signature"


_SENTENCES = {
    ProvenanceReason.UNSIGNED: "the message carries no sgb.key_id and sgb.signature headers.",
    ProvenanceReason.UNKNOWN_KEY: "the message is signed with a key id that is not in the trust store.",
    ProvenanceReason.RETIRED_KEY: "the message is signed with a key that has been retired.",
    ProvenanceReason.SIGNER_NOT_ALLOWED: "the message's signer may not write this topic.",
    ProvenanceReason.BAD_SIGNATURE: "the signature does not match the message's bytes, key and topic.",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message whose provenance failed: the reason, and the key id it claimed (never its content)."""

    reason: ProvenanceReason
    key_id: str | None = None

    @property
    def sentence(self) -> str:
        """The dead-letter reason: the reason code, then what is wrong."""
        return f"{self.reason.value}: {_SENTENCES[self.reason]}"


def signed_bytes(topic: str, key: bytes | None, value: bytes | None) -> bytes:
    """The bytes a signature covers: domain tag, logical topic, key and value, each length-prefixed."""
    parts = (DOMAIN, topic.encode(), key or b"", value or b"")
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def allowed_signer(signer: str, topic: str) -> bool:
    """Whether ``signer`` may write the logical ``topic``: ingress its own agency's, deliveries the filter."""
    if topic.startswith(INGRESS_PREFIX) and topic.endswith(".v1"):
        agency = topic[len(INGRESS_PREFIX) : -len(".v1")]
        return signer == agency or signer.startswith(agency + ".")
    if topic.startswith(DELIVERY_PREFIX):
        return signer == FILTER_SIGNER
    return False


def _header(headers: Headers, name: str) -> bytes | None:
    if isinstance(headers, Mapping):
        value = headers.get(name)
    else:
        value = next((item[1] for item in headers or () if item[0] == name), None)
    return value.encode() if isinstance(value, str) else value


def carried(headers: Headers) -> list[tuple[str, bytes]]:
    """A message's own provenance headers, kept with its dead letter so that a replay of the
    same bytes to the same topic verifies again (and a forged one still fails)."""
    out = []
    for name in (KEY_ID_HEADER, SIGNATURE_HEADER):
        value = _header(headers, name)
        if value is not None:
            out.append((name, value))
    return out


class Signer:
    """Signs as one signer with its active key, switching when the key is rotated (no restart).

    Args:
        store: where the keys are.
        signer: ``filter``, an agency (``police``) or an agency's organisation (``police.NPCC01``).
    """

    __slots__ = ("_key", "_key_id_bytes", "_store", "_watch", "key_id", "signer")

    def __init__(self, store: KeyStore, signer: str) -> None:
        self._store = store
        self.signer = check_signer(signer)
        self._watch = DirectoryWatch(store.signer_dir(signer))
        self.key_id = ""
        self._key_id_bytes = b""
        self._key: Ed25519PrivateKey | None = None
        self._refresh()

    def _refresh(self) -> None:
        if self._watch.changed() or self._key is None:
            self.key_id, self._key = self._store.active(self.signer)
            self._key_id_bytes = self.key_id.encode()

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """(key id, Ed25519 signature) over ``data`` with the active key."""
        self._refresh()
        assert self._key is not None
        return self.key_id, self._key.sign(data)

    def headers(self, topic: str, key: bytes | None, value: bytes | None) -> list[tuple[str, bytes]]:
        """The provenance headers for a message to the logical ``topic``."""
        self._refresh()
        assert self._key is not None
        signature = self._key.sign(signed_bytes(topic, key, value))
        return [(KEY_ID_HEADER, self._key_id_bytes), (SIGNATURE_HEADER, base64.b64encode(signature))]


def signature_bytes(header: bytes) -> bytes | None:
    """The raw signature in an ``sgb.signature`` header: base64 text, or (until the next release)
    the 64 raw bytes earlier releases wrote; None when it is neither."""
    if len(header) == RAW_SIGNATURE_SIZE:
        return header
    try:
        raw = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == RAW_SIGNATURE_SIZE else None


class Verifier:
    """Checks signatures against the trust store, re-reading it whenever it changes.

    Args:
        store: where the trust store is. A damaged entry stops the start; one that appears
            later is left out (what it would verify is rejected as ``unknown_key``) and logged.
    """

    __slots__ = ("_keys", "_store", "_watch")

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._watch = DirectoryWatch(store.trust_dir)
        self._keys: dict[str, tuple[TrustedKey, Ed25519PublicKey]] = {}
        self._load(strict=True)

    def _load(self, strict: bool) -> None:
        self._watch.changed()
        trusted = self._store.trusted(strict)
        self._keys = {key_id: (entry, entry.public()) for key_id, entry in trusted.items()}

    def refresh(self) -> None:
        """Re-read the trust store if it changed (one ``stat`` when it did not)."""
        if self._watch.changed():
            self._load(strict=False)

    def check_detached(
        self, signer: str, key_id: str | None, data: bytes, signature: bytes | None
    ) -> Rejection | None:
        """None if ``signature`` over ``data`` is by a trusted, unretired key of ``signer``."""
        self.refresh()
        if not key_id or not signature:
            return Rejection(ProvenanceReason.UNSIGNED)
        found = self._keys.get(key_id)
        if found is None:
            return Rejection(ProvenanceReason.UNKNOWN_KEY, key_id)
        entry, public = found
        if entry.retired:
            return Rejection(ProvenanceReason.RETIRED_KEY, key_id)
        if entry.signer != signer:
            return Rejection(ProvenanceReason.SIGNER_NOT_ALLOWED, key_id)
        try:
            public.verify(signature, data)
        except (InvalidSignature, ValueError):
            return Rejection(ProvenanceReason.BAD_SIGNATURE, key_id)
        return None

    def check(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> Rejection | None:
        """None if the message to the logical ``topic`` is signed by a trusted, allowed, unretired key."""
        self.refresh()
        return self.check_loaded(topic, key, value, headers)

    def check_loaded(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers
    ) -> Rejection | None:
        """:meth:`check` against the trust store as last read (safe to call from several threads)."""
        key_id_raw, signature = _header(headers, KEY_ID_HEADER), _header(headers, SIGNATURE_HEADER)
        if not key_id_raw or not signature:
            return Rejection(ProvenanceReason.UNSIGNED)
        key_id = key_id_raw.decode("ascii", "replace")
        found = self._keys.get(key_id)
        if found is None:
            return Rejection(ProvenanceReason.UNKNOWN_KEY, key_id)
        entry, public = found
        if entry.retired:
            return Rejection(ProvenanceReason.RETIRED_KEY, key_id)
        if not allowed_signer(entry.signer, topic):
            return Rejection(ProvenanceReason.SIGNER_NOT_ALLOWED, key_id)
        raw = signature_bytes(signature)
        if raw is None:
            return Rejection(ProvenanceReason.BAD_SIGNATURE, key_id)
        try:
            public.verify(raw, signed_bytes(topic, key, value))
        except (InvalidSignature, ValueError):
            return Rejection(ProvenanceReason.BAD_SIGNATURE, key_id)
        return None


class Provenance:
    """One process's provenance: a verifier for what it reads and, if it writes, a signer.

    Works with physical topic names (as Kafka reports them) and signs their logical names.

    Args:
        settings: the state directory (keys) and the topic prefix.
        signer: who this process signs as; None for a process that only verifies (a hub).
    """

    __slots__ = ("_pool", "_prefix", "_prepared", "signer", "verifier")

    def __init__(self, settings: Settings, signer: str | None = None) -> None:
        store = KeyStore(settings.keys_dir)
        self._prefix = settings.topic_prefix
        self.signer = Signer(store, signer) if signer else None
        self.verifier = Verifier(store)
        self._pool: ThreadPoolExecutor | None = None
        self._prepared: dict[int, Rejection | None] = {}

    def _logical(self, topic: str) -> str:
        return topic[len(self._prefix) :] if self._prefix and topic.startswith(self._prefix) else topic

    def sign(self, topic: str, key: bytes | None, value: bytes | None) -> list[tuple[str, bytes]]:
        """The provenance headers for a message to the physical ``topic``."""
        if self.signer is None:
            msg = "This process verifies provenance but has no signer."
            raise RuntimeError(msg)
        return self.signer.headers(self._logical(topic), key, value)

    def check(self, message: Any) -> Rejection | None:
        """Verify a consumed Kafka message (or look up its :meth:`prepare` result); None if it holds."""
        if id(message) in self._prepared:
            return self._prepared.pop(id(message))
        return self.verifier.check(
            self._logical(message.topic() or ""), message.key(), message.value(), message.headers()
        )

    def prepare(self, messages: Sequence[Any]) -> None:
        """Verify a batch ahead of :meth:`check`, on every core: Ed25519 verification releases
        the GIL, and it is most of what provenance costs the filter."""
        self._prepared.clear()
        self.verifier.refresh()
        workers = min(4, os.cpu_count() or 1)
        if workers < 2 or len(messages) < 16:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sgb-verify")
        chunks = [messages[i::workers] for i in range(workers)]
        for chunk, results in zip(chunks, self._pool.map(self._verify_chunk, chunks), strict=True):
            self._prepared.update(zip(map(id, chunk), results, strict=True))

    def _verify_chunk(self, chunk: Sequence[Any]) -> list[Rejection | None]:
        return [
            self.verifier.check_loaded(self._logical(m.topic() or ""), m.key(), m.value(), m.headers())
            for m in chunk
        ]


def for_process(settings: Settings, signer: str | None = None) -> Provenance | None:
    """The process's :class:`Provenance` when ``SGB_PROVENANCE`` is on, else None (no signing)."""
    return Provenance(settings, signer) if settings.provenance else None
