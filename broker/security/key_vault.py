"""Per-child data keys that can really be destroyed: the key vault behind field encryption.

Each child gets one random 256-bit data key (DEK), created on first use. The vault keeps
it only wrapped (AES-GCM) by the key-encryption key (KEK) from the key provider, next to a
random key id (``kid``) and a keyed hash of the child's key (never the child key itself).
Destroying a child's DEK makes every field sealed with it unreadable wherever its copies
are, Kafka's immutable log included: that is erasure and end of retention for those fields.

DEKs are never written to Kafka: a compacted topic keeps old values until compaction runs,
so deleting there would not be real. :class:`SqliteKeyVault` is the embedded store, one
SQLite file under ``<state_dir>/keys`` shared by the processes on one host, with
``secure_delete`` on so a destroyed row is overwritten in the file. The file system may
still hold freed blocks of an earlier version of the file, and the KEK sits next to it, so
production points :class:`KeyVault` at a KMS- or HSM-backed store whose deletion is
certified (the KEK then never leaves the HSM).

Erasure reaches long-running processes through a marker file that ``destroy`` rewrites:
every lookup compares the marker's identity (one ``stat``), and a change empties the
in-memory cache, so once ``sgb erase`` has returned no process on the host unwraps or
uses that DEK again. Cached keys also expire after :data:`CACHE_TTL_S` as a backstop.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.exceptions import SgbError
from broker.security.key_directory import KeyProvider

KID_BYTES = 16
CACHE_TTL_S = 60.0
CACHE_SIZE = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    kid BLOB PRIMARY KEY,
    child_ref TEXT NOT NULL UNIQUE,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL
)
"""


class KeyVault(Protocol):
    """Where per-child data keys live, wrapped. Implementations must delete for real."""

    def data_key(self, child: str) -> tuple[bytes, bytes]:
        """The child's ``(kid, dek)``, created on first use."""
        ...

    def key_by_id(self, kid: bytes) -> bytes | None:
        """The DEK with id ``kid``, or None when it was destroyed (or never existed)."""
        ...

    def destroy(self, child: str) -> int:
        """Destroy the child's DEK; returns how many keys were destroyed (0 or 1)."""
        ...

    def child_ref(self, child: str) -> str:
        """A keyed hash of the child key, safe to log and report."""
        ...


class SqliteKeyVault:
    """The embedded vault: one SQLite file, wrapped keys only, rows overwritten on delete.

    Args:
        path: the vault file (``<state_dir>/keys/data-keys.sqlite`` by default).
        keys: the key provider; its ``kek`` secret wraps the DEKs and ``dek-index`` keys the
            hash that finds a child's row.
    """

    def __init__(self, path: Path, keys: KeyProvider) -> None:
        self.path = path
        self._kek = AESGCM(keys.secret("kek"))
        self._index_key = keys.secret("dek-index")
        self._marker = path.with_name(path.name + ".erasures")
        self._lock = threading.Lock()
        self._by_child: OrderedDict[str, tuple[bytes, bytes, float]] = OrderedDict()
        self._by_kid: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._seen_marker = self._marker_identity()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            msg = f"Key vault {path} cannot be opened: {exc}."
            raise SgbError(msg) from None

    # -- identities ------------------------------------------------------------------------
    def child_ref(self, child: str) -> str:
        return hmac.new(self._index_key, child.encode(), hashlib.sha256).hexdigest()[:32]

    def _aad(self, kid: bytes, ref: str) -> bytes:
        return b"sgb-dek-v1\x00" + kid + b"\x00" + ref.encode()

    # -- lookups ---------------------------------------------------------------------------
    def data_key(self, child: str) -> tuple[bytes, bytes]:
        with self._lock:
            self._check_erasures()
            now = time.monotonic()
            cached = self._by_child.get(child)
            if cached is not None and now - cached[2] < CACHE_TTL_S:
                self._by_child.move_to_end(child)
                return cached[0], cached[1]
            ref = self.child_ref(child)
            row = self._row("SELECT kid, wrapped FROM data_keys WHERE child_ref = ?", ref)
            if row is None:
                kid, dek = secrets.token_bytes(KID_BYTES), AESGCM.generate_key(256)
                nonce = secrets.token_bytes(12)
                wrapped = nonce + self._kek.encrypt(nonce, dek, self._aad(kid, ref))
                created = datetime.now(UTC).isoformat(timespec="seconds")
                # Another process may create the same child's key at the same moment: the
                # first insert wins and everyone reads the winner back.
                self._execute(
                    "INSERT OR IGNORE INTO data_keys VALUES (?, ?, ?, ?)", kid, ref, wrapped, created
                )
                row = self._row("SELECT kid, wrapped FROM data_keys WHERE child_ref = ?", ref)
                if row is None:
                    msg = f"Key vault {self.path} did not keep a new data key."
                    raise SgbError(msg)
            kid, dek = row[0], self._unwrap(row[0], ref, row[1])
            self._remember(child, kid, dek, now)
            return kid, dek

    def key_by_id(self, kid: bytes) -> bytes | None:
        with self._lock:
            self._check_erasures()
            now = time.monotonic()
            cached = self._by_kid.get(kid)
            if cached is not None and now - cached[1] < CACHE_TTL_S:
                self._by_kid.move_to_end(kid)
                return cached[0]
            row = self._row("SELECT child_ref, wrapped FROM data_keys WHERE kid = ?", kid)
            if row is None:
                self._by_kid.pop(kid, None)
                return None
            dek = self._unwrap(kid, row[0], row[1])
            self._by_kid[kid] = (dek, now)
            self._trim()
            return dek

    def destroy(self, child: str) -> int:
        ref = self.child_ref(child)
        with self._lock:
            cursor = self._execute("DELETE FROM data_keys WHERE child_ref = ?", ref)
            destroyed = max(cursor.rowcount, 0)
            if destroyed:  # secure_delete has overwritten the row and its index entries in the file
                self._signal_erasure()
            self._by_child.clear()
            self._by_kid.clear()
        return destroyed

    def count(self) -> int:
        """How many data keys the vault holds."""
        with self._lock:
            row = self._row("SELECT COUNT(*) FROM data_keys")
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the file and forget the cached keys."""
        with self._lock:
            self._by_child.clear()
            self._by_kid.clear()
            self._db.close()

    # -- internals -------------------------------------------------------------------------
    def _unwrap(self, kid: bytes, ref: str, wrapped: bytes) -> bytes:
        try:
            return self._kek.decrypt(wrapped[:12], wrapped[12:], self._aad(kid, ref))
        except (InvalidTag, ValueError):
            msg = (
                f"Key vault {self.path} holds a data key that the key-encryption key cannot unwrap "
                "(the kek key file was replaced or the vault was altered)."
            )
            raise SgbError(msg) from None

    def _remember(self, child: str, kid: bytes, dek: bytes, now: float) -> None:
        self._by_child[child] = (kid, dek, now)
        self._by_kid[kid] = (dek, now)
        self._trim()

    def _trim(self) -> None:
        while len(self._by_child) > CACHE_SIZE:
            self._by_child.popitem(last=False)
        while len(self._by_kid) > CACHE_SIZE:
            self._by_kid.popitem(last=False)

    def _row(self, sql: str, *args: object) -> tuple[Any, ...] | None:
        try:
            row = self._db.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            msg = f"Key vault {self.path} cannot be read: {exc}."
            raise SgbError(msg) from None
        return tuple(row) if row is not None else None

    def _execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            msg = f"Key vault {self.path} cannot be written: {exc}."
            raise SgbError(msg) from None

    def _marker_identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._marker)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _check_erasures(self) -> None:
        seen = self._marker_identity()
        if seen != self._seen_marker:
            self._by_child.clear()
            self._by_kid.clear()
            self._seen_marker = seen

    def _signal_erasure(self) -> None:
        # A new file (new inode) replaces the marker atomically: other processes see the change.
        tmp = self._marker.with_name(f"{self._marker.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{time.time_ns()}\n".encode())
        finally:
            os.close(fd)
        os.replace(tmp, self._marker)
        self._seen_marker = self._marker_identity()


def vault_path(state_dir: Path) -> Path:
    """Where the embedded vault lives under a state directory."""
    return state_dir / "keys" / "data-keys.sqlite"
