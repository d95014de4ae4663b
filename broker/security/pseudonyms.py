"""Pseudonymous child keys: what Kafka sees of a child when field encryption is on.

A child key (``nhs:9990000018``, ``la:202:C-1``) is an identifier in clear, and Kafka keeps
message keys as long as it keeps the message (for good on a compacted topic). With
``SGB_FIELD_ENCRYPTION=on`` every message key, and every child key the filter writes into
its state, ledger, identity-link and audit records, is instead the keyed hash::

    <namespace>:~<HMAC-SHA256(child-pseudonym secret, child key), 128 bits, hex>

e.g. ``nhs:~3f2a...`` or ``la:202:~9c1e...``. It is deterministic, so one child's events
still share a key (same partition, same order) and identifiers still match by equality in
the identity index; the namespace stays (``nhs``, ``la:<code>``, ``police``, ``upn``,
``lpi:<ods>``; the codes are organisations, not people), so the rules that depend on who
issued an identifier hold. Without the secret nobody can tell which child a pseudonym
names, nor test a guessed NHS number against it. The secret (``child-pseudonym`` in the key
directory) is made at run time and never committed; every connector, filter and ``sgb
erase`` of a deployment must share it (see README, "Per-child field encryption and erasure").
"""

from __future__ import annotations

import hashlib
import hmac

from broker.security.key_directory import KeyProvider
from schemas.child_keys import identifier_namespace

SECRET = "child-pseudonym"
#: What marks a pseudonym after its namespace.
MARK = ":~"


def is_pseudonym(key: str) -> bool:
    """Whether ``key`` is already a pseudonym (never pseudonymised twice)."""
    return MARK in key


class ChildPseudonyms:
    """Turns child keys into their pseudonyms.

    Args:
        keys: the key provider; its ``child-pseudonym`` secret keys the hash.
    """

    __slots__ = ("_cache", "_secret")

    def __init__(self, keys: KeyProvider) -> None:
        self._secret = keys.secret(SECRET)
        self._cache: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        """The pseudonym of a child key (a pseudonym is returned as it is)."""
        found = self._cache.get(key)
        if found is not None:
            return found
        if is_pseudonym(key):
            return key
        digest = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()[:32]
        if len(self._cache) > 100_000:
            self._cache.clear()
        out = self._cache[key] = f"{identifier_namespace(key)}{MARK}{digest}"
        return out


def plain(key: str) -> str:
    """The key itself: the namer when field encryption is off."""
    return key
