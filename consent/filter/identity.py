"""The child index on Kafka: links on the compacted link topic, demographics sealed at rest.

Every filter process reads all of ``sg.identity.links.v1`` (from the start, at every
start: the topic is compacted to one record per pair) into its index, so every process
and a rebuild decide against the same linked children. Links this process makes are
produced in its batch's transaction and put in force at once; an aborted batch forgets
them. Demographics used for matching are kept in this process's state store, each sealed
with its child's data key (AES-GCM, the key vault of field encryption): ``sgb erase``
destroys that key, and they can no longer be read. Blocking keys are stored as keyed
hashes. Nothing here logs a value; ids and counts only.
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

from broker.security.key_directory import key_provider
from broker.security.key_vault import SqliteKeyVault, vault_path
from broker.settings import Settings
from consent.identity import ChildIndex, Demographics, Link, MatchModel, Resolution, Resolver, linked_state
from consent.policy import Policy
from consent.state import ChildState


class SealedDemographics:
    """Demographics by child key in SQLite, sealed with each child's data key.

    Args:
        path: the database file.
        vault: the key vault (data keys per child key; destroyed by ``sgb erase``).
        blocking_key: the secret the blocking keys are hashed with.
    """

    def __init__(self, path: Path, vault: SqliteKeyVault, blocking_key: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS demographics (key TEXT PRIMARY KEY, fingerprint TEXT, kid BLOB, sealed BLOB)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS blocks (token TEXT, key TEXT, PRIMARY KEY (token, key))")
        self._vault, self._blocking_key = vault, blocking_key
        self._pending: dict[str, Demographics] = {}
        self._cache: OrderedDict[str, Demographics | None] = OrderedDict()

    def _token(self, text: str) -> str:
        return hmac.new(self._blocking_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def get(self, key: str) -> Demographics | None:
        if key in self._pending:
            return self._pending[key]
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        row = self._db.execute("SELECT kid, sealed FROM demographics WHERE key = ?", (key,)).fetchone()
        demo = self._open(key, row[0], row[1]) if row else None
        self._cache[key] = demo
        if len(self._cache) > 50_000:
            self._cache.popitem(last=False)
        return demo

    def _open(self, key: str, kid: bytes, sealed: bytes) -> Demographics | None:
        dek = self._vault.key_by_id(kid)
        if dek is None:
            return None  # erased: the child's data key is destroyed
        text = AESGCM(dek).decrypt(sealed[:12], sealed[12:], b"sgb.demographics.v1\x00" + key.encode())
        return Demographics.loads(text.decode())

    def put(self, key: str, demographics: Demographics) -> None:
        self._pending[key] = demographics

    def lookup(self, blocks: Iterable[str]) -> set[str]:
        wanted = set(blocks)
        tokens = [self._token(block) for block in wanted]
        found = {
            str(row[0])
            for row in self._db.execute(
                f"SELECT key FROM blocks WHERE token IN ({','.join('?' * len(tokens))})", tokens
            )
        }
        for key, demo in self._pending.items():
            if wanted.intersection(demo.blocks()):
                found.add(key)
        return found

    def commit(self) -> None:
        """Seal and write what this batch put."""
        if not self._pending:
            return
        rows: list[tuple[str, str, bytes, bytes]] = []
        blocks: list[tuple[str, str]] = []
        for key, demo in self._pending.items():
            kid, dek = self._vault.data_key(key)
            nonce = secrets.token_bytes(12)
            sealed = nonce + AESGCM(dek).encrypt(
                nonce, demo.dumps().encode(), b"sgb.demographics.v1\x00" + key.encode()
            )
            rows.append((key, self._token(demo.dumps()), kid, sealed))
            blocks.extend((self._token(block), key) for block in demo.blocks())
            self._cache[key] = demo
        self._db.execute("BEGIN")
        try:
            self._db.executemany("DELETE FROM blocks WHERE key = ?", [(r[0],) for r in rows])
            self._db.executemany("INSERT OR REPLACE INTO demographics VALUES (?, ?, ?, ?)", rows)
            self._db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)", blocks)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._pending.clear()

    def rollback(self) -> None:
        self._pending.clear()

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
        for name in ("kek", "dek-index"):
            keys.secret(name)
        self._vault = SqliteKeyVault(vault_path(settings.state_dir), keys)
        self.demographics = SealedDemographics(
            store_path.with_name(store_path.stem + ".identity.db"),
            self._vault,
            keys.secret("identity-blocking"),
        )
        self.index = ChildIndex()
        self._resolver = Resolver(self.index, self.demographics, MatchModel.load(), policy.identity)
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
        self._vault.close()
