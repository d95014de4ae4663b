"""What a snapshot connector has published, per fact, durable under its state folder.

``<state_dir>/connectors/<name>/snapshot.log`` has one JSON line per published change of a
fact (appended and fsynced after Kafka committed the transaction that carried it; the last
line of a key wins; a torn last line is ignored):

* ``k``: a digest of the fact's key (the key names the child, so it is never kept in clear);
* ``c``: a digest of the content published, so a changed fact is told as ``AMENDED``;
* ``s``: a digest of the return's scope (kind, authority, period), so a complete return of
  the same scope can withdraw what it no longer has (``RETRACTED``);
* ``p``: a digest of the child it is about, so a child held back is not withdrawn;
* ``e``: the event id published for it (derived from the connector and the key), which its
  corrections name;
* ``o``: a digest of the fact's slot, when other facts may answer it instead (see
  :class:`~connectors.runtime.snapshots.Fact`);
* ``n``: corrections sent so far (each correction's event id counts them);
* ``w``: withdrawn (a fact that reappears later is told as ``AMENDED``: restored);
* ``t``, ``ck``, ``src``: the event type, the child key and the source of the published event,
  which a withdrawal notice must carry to follow its original. The child key is an identifier,
  so it is sealed (AES-GCM, bound to the fact's digest) with the connector's key from the key
  directory (``<state_dir>/keys/snapshot-<name>.key``): the log alone names no child.

A line of 24 hex digits alone is a fact published before corrections existed: its event id was
derived from its file and position, so nothing can correct it; it stays unchanged for ever.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.security.key_directory import KeyProvider, key_provider
from connectors.exceptions import MappingError

#: A record's place: (file id, ordinal).
Position = tuple[str, int]


def digest(text: str) -> str:
    """The short digest the log keeps instead of a key, a scope or a child."""
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """What was published for one fact (see the module doc for each field)."""

    k: str
    e: str | None = None
    c: str | None = None
    s: str | None = None
    p: str | None = None
    o: str | None = None
    n: int = 0
    w: bool = False
    t: str | None = None
    ck: str | None = None
    src: dict[str, Any] | None = field(default=None)

    @property
    def correctable(self) -> bool:
        """Whether its event id was derived from its key (a fact published before corrections was not)."""
        return self.e is not None and self.c is not None

    def changed(self, **changes: Any) -> Entry:
        """This entry with ``changes``."""
        return replace(self, **changes)


#: The log line's members, in order.
FIELDS = tuple(f.name for f in fields(Entry))


def _entry(line: str) -> Entry | None:
    line = line.strip()
    if len(line) == 24 and " " not in line:
        return Entry(line)
    try:
        data = json.loads(line)
        return Entry(**data)
    except (ValueError, TypeError):
        return None  # a torn last line (a crash mid-append)


class SnapshotStore:
    """The facts a connector has published, durable under its state folder.

    Args:
        root: ``<state_dir>/connectors/<name>``.
        durable: False for a dry run: the log is read, and what would be published is kept in
            memory only.
        keys: where the key sealing child keys comes from (default: a ``keys`` folder in ``root``).
    """

    def __init__(self, root: Path, *, durable: bool = True, keys: KeyProvider | None = None) -> None:
        self.durable = durable
        self.path = root / "snapshot.log"
        self._keys = keys or key_provider(root / "keys")
        self._key_name = f"snapshot-{root.name}"
        self._aead: AESGCM | None = None
        self._published: dict[str, Entry] = {}
        self._claimed: dict[Position, Entry] = {}  # by record, in claim order
        self._latest: dict[str, Entry] = {}  # by fact: the newest claim
        self._pending: Counter[str] = Counter()  # by fact: how many claims
        if self.path.exists():
            with self.path.open("r", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    entry = _entry(line)
                    if entry is not None:
                        self._published[entry.k] = entry

    def __len__(self) -> int:
        return len(self._published)

    def get(self, key_digest: str) -> Entry | None:
        """The newest entry of a fact: claimed earlier in this run, else published, else None."""
        return self._latest.get(key_digest) or self._published.get(key_digest)

    def claimed(self, key_digest: str) -> bool:
        """Whether this run already claimed the fact (a return that states it twice)."""
        return key_digest in self._latest

    def claim(self, at: Position, entry: Entry) -> None:
        """Hold ``entry`` as what the record at ``at`` publishes for its fact, until :meth:`published`."""
        self._claimed[at] = entry
        self._latest[entry.k] = entry
        self._pending[entry.k] += 1

    def release(self, at: Position) -> None:
        """Forget the claim of a record whose event was not published (tried again next return)."""
        entry = self._claimed.pop(at, None)
        if entry is not None:
            self._forget(entry.k)

    def _forget(self, key_digest: str) -> None:
        self._pending[key_digest] -= 1
        if self._pending[key_digest] <= 0:
            del self._pending[key_digest]
            self._latest.pop(key_digest, None)
            return
        remaining = [c for c in self._claimed.values() if c.k == key_digest]
        if remaining:  # another claim of the same fact in this run, still open: the newest
            self._latest[key_digest] = remaining[-1]

    def child_key(self, entry: Entry) -> str | None:
        """The child key of an entry, unsealed; raises :class:`MappingError` if the key it was
        sealed with is gone."""
        if entry.ck is None or not entry.ck.startswith("sealed:"):
            return entry.ck
        blob = base64.b64decode(entry.ck[7:])
        try:
            return self._cipher().decrypt(blob[:12], blob[12:], entry.k.encode()).decode()
        except InvalidTag:  # fail closed: the withdrawal is dead-lettered, never sent unrouted
            msg = (
                f"The withdrawn fact's child cannot be read back: the key {self._key_name} is not the "
                "one the connector sealed it with (restore the state directory's keys with its connectors)."
            )
            raise MappingError(msg) from None

    def _seal(self, entry: Entry) -> Entry:
        if entry.ck is None or entry.ck.startswith("sealed:"):
            return entry
        nonce = secrets.token_bytes(12)
        blob = nonce + self._cipher().encrypt(nonce, entry.ck.encode(), entry.k.encode())
        return entry.changed(ck="sealed:" + base64.b64encode(blob).decode())

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._keys.secret(self._key_name))
        return self._aead

    def in_scope(self, scope_digest: str) -> Iterator[Entry]:
        """Every correctable fact published under a scope, withdrawn or not, in digest order
        (the same order on every read of the same return, so positions stay stable)."""
        for key in sorted(self._published):
            entry = self._published[key]
            if entry.s == scope_digest and entry.correctable:
                yield entry

    def published(self, positions: Iterable[Position]) -> None:
        """Make the claims of the records at ``positions`` durable (call only after Kafka committed
        their events), in the order given (the batch's)."""
        entries = [e for e in (self._claimed.pop(at, None) for at in positions) if e is not None]
        if not entries:
            return
        if self.durable:
            sealed = [self._seal(e) for e in entries]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                body = "".join(
                    json.dumps({f: getattr(e, f) for f in FIELDS}, separators=(",", ":")) + "\n"
                    for e in sealed
                )
                os.write(fd, body.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        for entry in entries:
            self._published[entry.k] = entry
            self._forget(entry.k)
