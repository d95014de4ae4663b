"""The child index on Kafka: links on the compacted link topic, demographics sealed at rest.

Every filter process reads all of ``sg.identity.links.v1`` (from the start, at every
start: the topic is compacted to one record per pair) into its index, so every process
and a rebuild decide against the same linked children. Links this process makes are
produced in its batch's transaction and put in force at once; an aborted batch forgets
them. Demographics used for matching are kept in this process's state store, sealed
(AES-GCM under the filter's ``identity-seal`` secret, bound to the child key) and never
cached in clear; ``sgb erase`` deletes a child's row from every filter store under the
state directory (:func:`erase_demographics`). Blocking keys and fingerprints are keyed
hashes. Nothing here logs a value; ids and counts only.

(Sealing with each child's own data key from the field-encryption vault would make erasure
the destruction of one key, but creating a key costs about 20 ms, more than the filter can
pay for every new child.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.security.ciphers import child_namer
from broker.security.key_directory import key_provider
from broker.settings import Settings
from consent.identity import ChildIndex, Demographics, Link, MatchModel, Resolution, Resolver, linked_state
from consent.identity.resolver import MAX_BLOCK
from consent.policy import Policy
from consent.state import ChildState


def _aad(key: str) -> bytes:
    return b"sgb.demographics.v1\x00" + key.encode()


def identity_store(store_path: Path) -> Path:
    """Where a filter process keeps its sealed demographics: next to its state store."""
    return store_path.with_name(store_path.stem + ".identity.db")


def erase_demographics(state_dir: Path, keys: Iterable[str]) -> int:
    """Delete these children's demographics and blocking keys from every filter store under
    ``state_dir``; returns how many rows went (``sgb erase``)."""
    removed = 0
    for path in sorted((state_dir / "filter").glob("*.identity.db")):
        db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA secure_delete=ON")
            for key in keys:
                removed += db.execute("DELETE FROM demographics WHERE key = ?", (key,)).rowcount
                db.execute("DELETE FROM blocks WHERE key = ?", (key,))
        finally:
            db.close()
    return removed


class SealedDemographics:
    """Demographics by child key in SQLite, sealed with each child's data key.

    Args:
        path: the database file.
        seal_key: the 256-bit key demographics are sealed with.
        blocking_key: the secret the blocking keys are hashed with.
    """

    def __init__(self, path: Path, seal_key: bytes, blocking_key: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS demographics (key TEXT PRIMARY KEY, fingerprint TEXT, sealed BLOB)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS blocks (token TEXT, key TEXT, PRIMARY KEY (token, key))")
        self._aead, self._blocking_key = AESGCM(seal_key), blocking_key
        self._pending: dict[str, Demographics] = {}
        #: The pending demographics by blocking key, so a lookup does not recompute every
        #: pending record's blocks (a batch of 500 events looked at up to 500 records each).
        self._pending_blocks: dict[str, set[str]] = {}
        #: Keyed hashes of the demographics last stored per key (no content), to skip unchanged ones.
        self._fingerprints: OrderedDict[str, str] = OrderedDict()

    def _token(self, text: str) -> str:
        return hmac.new(self._blocking_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def get(self, key: str) -> Demographics | None:
        if key in self._pending:
            return self._pending[key]
        # Opened on every read, never cached in clear: once `sgb erase` destroys the key, it is gone.
        row = self._db.execute("SELECT sealed FROM demographics WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        sealed = bytes(row[0])
        return Demographics.loads(self._aead.decrypt(sealed[:12], sealed[12:], _aad(key)).decode())

    def unchanged(self, key: str, demographics: Demographics) -> bool:
        if key in self._pending:
            return self._pending[key] == demographics
        fingerprint = self._token(demographics.dumps())
        if self._fingerprints.get(key) == fingerprint:
            return True
        row = self._db.execute("SELECT fingerprint FROM demographics WHERE key = ?", (key,)).fetchone()
        same = row is not None and row[0] == fingerprint
        if same:
            self._remember(key, fingerprint)
        return same

    def _remember(self, key: str, fingerprint: str) -> None:
        self._fingerprints[key] = fingerprint
        self._fingerprints.move_to_end(key)
        if len(self._fingerprints) > 100_000:
            self._fingerprints.popitem(last=False)

    def put(self, key: str, demographics: Demographics) -> None:
        before = self._pending.get(key)
        if before is not None:
            for block in before.blocks():
                self._pending_blocks[block].discard(key)
        self._pending[key] = demographics
        for block in demographics.blocks():
            self._pending_blocks.setdefault(block, set()).add(key)

    def lookup(self, blocks: Iterable[str]) -> set[str]:
        wanted = set(blocks)
        found: set[str] = set()
        for block in wanted:
            rows = self._db.execute(
                "SELECT key FROM blocks WHERE token = ? LIMIT ?", (self._token(block), MAX_BLOCK + 1)
            ).fetchall()
            if len(rows) <= MAX_BLOCK:  # a larger block says little and would cost much
                found.update(str(row[0]) for row in rows)
        for block in wanted:
            found.update(self._pending_blocks.get(block, ()))
        return found

    def commit(self) -> None:
        """Seal and write what this batch put."""
        if not self._pending:
            return
        rows: list[tuple[str, str, bytes]] = []
        blocks: list[tuple[str, str]] = []
        for key, demo in self._pending.items():
            nonce = secrets.token_bytes(12)
            text = demo.dumps()
            sealed = nonce + self._aead.encrypt(nonce, text.encode(), _aad(key))
            rows.append((key, self._token(text), sealed))
            blocks.extend((self._token(block), key) for block in demo.blocks())
            self._remember(key, rows[-1][1])
        self._db.execute("BEGIN")
        try:
            self._db.executemany("DELETE FROM blocks WHERE key = ?", [(r[0],) for r in rows])
            self._db.executemany("INSERT OR REPLACE INTO demographics VALUES (?, ?, ?)", rows)
            self._db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)", blocks)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._pending.clear()
        self._pending_blocks.clear()

    def rollback(self) -> None:
        self._pending.clear()
        self._pending_blocks.clear()

    def close(self) -> None:
        self._db.close()


class FilterIdentity:
    """The filter's child index: evidence in, linked children out.

    Args:
        settings: where the state directory and keys are.
        store_path: the filter's state store; the demographics live next to it.
        policy: the policy in force (its identity thresholds).
    """

    def __init__(self, settings: Settings, store_path: Path, policy: Policy) -> None:
        keys = key_provider(settings.keys_dir)
        self.demographics = SealedDemographics(
            identity_store(store_path), keys.secret("identity-seal"), keys.secret("identity-blocking")
        )
        self.index = ChildIndex()
        self._resolver = Resolver(
            self.index, self.demographics, MatchModel.load(), policy.identity, child_namer(settings)
        )
        self._undo: list[tuple[str, Link | None]] = []

    def use_policy(self, policy: Policy) -> None:
        """Follow a policy reload (new thresholds)."""
        self._resolver.thresholds = policy.identity

    def apply_record(self, record: Mapping[str, Any]) -> None:
        """Put a record read from the link topic in force."""
        self.index.apply(Link.from_record(record))

    def observe(self, event: Mapping[str, Any]) -> list[Link]:
        """Apply an event's evidence; the new records to produce, in this batch's transaction."""
        made = self._resolver.observe(event)
        # The resolver only records pairs that had no record in force, so undoing is removing.
        self._undo.extend((link.link_id, None) for link in made)
        return made

    def view(
        self, key: str, own: ChildState, state_of: Callable[[str], ChildState]
    ) -> tuple[ChildState, Resolution]:
        """The state the engine decides against: ``own`` with every linked identifier's state."""
        resolution = self._resolver.resolve(key)
        if not resolution.relied:
            return own, resolution
        return linked_state(own, [state_of(other) for other in resolution.others]), resolution

    def commit(self) -> None:
        """The batch committed: keep its links and seal its demographics."""
        self._undo.clear()
        self.demographics.commit()

    def rollback(self) -> None:
        """The batch aborted: forget its links and demographics."""
        for lid, previous in reversed(self._undo):
            self.index.restore(lid, previous)
        self._undo.clear()
        self.demographics.rollback()

    def close(self) -> None:
        self.demographics.close()
