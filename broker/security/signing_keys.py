"""Provenance keys on disk: each signer's Ed25519 private keys and the trust store of public keys.

Layout under ``<state_dir>/keys`` (made at run time, owner-only, never committed)::

    signing/<signer>/<key-id>.key   raw 32-byte Ed25519 private key (0600)
    signing/<signer>/active         the key id this signer signs with now
    trust/<key-id>.json             a public key: signer, key, created, retired

A key id is ``<signer>-<first 16 hex digits of SHA-256 of the public key>``, so an imported
public key is checked against its own id. Every file is written whole and renamed into
place, so a reader never sees half a file and a directory's modification time changes with
every write: verifiers and signers notice rotation and retirement without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from broker.exceptions import SgbError
from broker.logs import get_logger

log = get_logger("broker.signing_keys")

FILTER_SIGNER = "filter"
AGENCY_SIGNERS = ("health", "police", "education", "local_authority")
# A connector signs as its agency, or as one organisation of it (``police.NPCC01``).
SIGNER_PATTERN = re.compile(r"^(filter|(health|police|education|local_authority)(\.[A-Za-z0-9_-]{1,64})?)$")
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,100}-[0-9a-f]{16}$")


class KeyStoreError(SgbError):
    """A provenance key or trust file is missing, damaged or refused."""


def check_signer(signer: str) -> str:
    """``signer`` if it names a known signer; raises :class:`KeyStoreError` otherwise."""
    if not SIGNER_PATTERN.match(signer):
        msg = (
            f"Signer {signer!r} is not 'filter' or an agency ({', '.join(AGENCY_SIGNERS)}), "
            "optionally followed by '.<organisation>'."
        )
        raise KeyStoreError(msg)
    return signer


def key_id_for(signer: str, public: bytes) -> str:
    """The key id of ``signer``'s public key: derived from the key, so it cannot be claimed for another."""
    return f"{signer}-{hashlib.sha256(public).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key in the trust store: who signs with it, and whether it is still accepted."""

    key_id: str
    signer: str
    public_key: str  # base64 of the raw 32 bytes
    created_at: str
    retired_at: str | None = None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    def public(self) -> Ed25519PublicKey:
        """The key itself, for verifying."""
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str) -> TrustedKey:
        """Parse and check a trust entry; raises :class:`KeyStoreError` naming ``where``."""
        try:
            entry = cls(
                key_id=str(data["key_id"]),
                signer=str(data["signer"]),
                public_key=str(data["public_key"]),
                created_at=str(data["created_at"]),
                retired_at=None if data.get("retired_at") is None else str(data["retired_at"]),
            )
            raw = base64.b64decode(entry.public_key, validate=True)
            Ed25519PublicKey.from_public_bytes(raw)
        except (KeyError, TypeError, AttributeError, ValueError):
            msg = f"Trust entry {where} is damaged: it must hold key_id, signer, public_key and created_at."
            raise KeyStoreError(msg) from None
        check_signer(entry.signer)
        if key_id_for(entry.signer, raw) != entry.key_id:
            msg = f"Trust entry {where} is refused: its key id does not match its signer and public key."
            raise KeyStoreError(msg)
        return entry


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole via a temporary file and a rename (which also bumps the directory's mtime)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DirectoryWatch:
    """Whether a directory may have changed since the last look: one ``stat`` per question.

    A change made within the file system's timestamp granularity of the last look could
    leave the modification time unchanged, so a look taken that close to the last change
    is repeated (the "racy timestamp" rule).
    """

    __slots__ = ("_looked_at", "_path", "_seen")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._looked_at = 0

    def changed(self) -> bool:
        """True the first time, and whenever the directory changed (or may have) since."""
        try:
            st = os.stat(self._path)
            stamp = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = (0, 0)
        racy = self._looked_at - stamp[1] < 50_000_000  # looked within 50 ms of the change
        if stamp == self._seen and not racy:
            return False
        self._seen, self._looked_at = stamp, time.time_ns()
        return True


class KeyStore:
    """The signing keys and the trust store under one directory.

    Args:
        directory: ``<state_dir>/keys`` by default (shared with the other local secrets).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.signing_dir = directory / "signing"
        self.trust_dir = directory / "trust"

    # -- signing keys ------------------------------------------------------------------------
    def signer_dir(self, signer: str) -> Path:
        return self.signing_dir / check_signer(signer)

    def active_key_id(self, signer: str) -> str | None:
        """The key id ``signer`` signs with now, or None if it has no key yet."""
        try:
            return (self.signer_dir(signer) / "active").read_text().strip() or None
        except FileNotFoundError:
            return None

    def active(self, signer: str) -> tuple[str, Ed25519PrivateKey]:
        """``signer``'s key id and private key, creating its first key if it has none."""
        key_id = self.active_key_id(signer)
        if key_id is None:
            key_id = self._create(signer, activate=True, first=True)
        path = self.signer_dir(signer) / f"{key_id}.key"
        try:
            raw = path.read_bytes()
            return key_id, Ed25519PrivateKey.from_private_bytes(raw)
        except FileNotFoundError:
            msg = f"Signing key file {path} is missing: restore it or run `sgb keys rotate {signer}`."
            raise KeyStoreError(msg) from None
        except ValueError:
            msg = f"Signing key file {path} is damaged: it must hold exactly 32 bytes."
            raise KeyStoreError(msg) from None

    def rotate(self, signer: str, activate: bool = True) -> TrustedKey:
        """Make a new key for ``signer`` and trust it; signing switches to it if ``activate``.

        The old key stays trusted until it is retired, so events signed before the switch
        (or by a process that has not noticed it yet) are still accepted.
        """
        key_id = self._create(signer, activate=activate, first=False)
        return self.trusted()[key_id]

    def activate(self, key_id: str) -> TrustedKey:
        """Make a trusted, unretired key whose private key is here its signer's signing key."""
        entry = self.trusted().get(key_id)
        if entry is None:
            msg = f"Key {key_id} is not in the trust store."
            raise KeyStoreError(msg)
        if entry.retired:
            msg = f"Key {key_id} is retired and cannot sign again."
            raise KeyStoreError(msg)
        if not (self.signer_dir(entry.signer) / f"{key_id}.key").is_file():
            msg = f"Key {key_id}'s private key is not on this machine, so it cannot sign here."
            raise KeyStoreError(msg)
        _write_atomically(self.signer_dir(entry.signer) / "active", key_id.encode(), 0o600)
        return entry

    def _create(self, signer: str, *, activate: bool, first: bool) -> str:
        directory = self.signer_dir(signer)
        self.signing_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.mkdir(exist_ok=True, mode=0o700)
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key_id = key_id_for(signer, public)
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        _write_atomically(directory / f"{key_id}.key", raw, 0o600)
        entry = TrustedKey(key_id, signer, base64.b64encode(public).decode(), _now())
        self._put_trusted(entry)
        if first:
            # Two processes may make a signer's first key at once: the first link wins and
            # the loser's key is removed before anything was signed with it.
            tmp = directory / f".active.{key_id}.tmp"
            tmp.write_text(key_id)
            try:
                os.link(tmp, directory / "active")
            except FileExistsError:
                for path in (directory / f"{key_id}.key", self.trust_dir / f"{key_id}.json"):
                    path.unlink(missing_ok=True)
                key_id = self.active_key_id(signer) or key_id
            finally:
                tmp.unlink(missing_ok=True)
        elif activate:
            _write_atomically(directory / "active", key_id.encode(), 0o600)
        log.info("signing key created", signer=signer, key_id=key_id, active=activate)
        return key_id

    # -- the trust store ---------------------------------------------------------------------
    def trusted(self, strict: bool = True) -> dict[str, TrustedKey]:
        """Every public key in the trust store by key id.

        Args:
            strict: raise on a damaged entry; otherwise leave it out (it verifies nothing) and log its file.
        """
        out: dict[str, TrustedKey] = {}
        try:
            paths = sorted(self.trust_dir.glob("*.json"))
        except FileNotFoundError:
            return out
        for path in paths:
            try:
                data = json.loads(path.read_bytes())
                entry = TrustedKey.from_json(data, str(path))
                if entry.key_id != path.stem:
                    msg = f"Trust entry {path} is refused: its file name is not its key id."
                    raise KeyStoreError(msg)
            except FileNotFoundError:
                continue  # removed meanwhile
            except (KeyStoreError, ValueError) as exc:
                if strict:
                    raise KeyStoreError(
                        str(exc) if isinstance(exc, KeyStoreError) else f"Trust entry {path} is not JSON."
                    ) from None
                log.error("trust entry ignored", path=str(path))
                continue
            out[entry.key_id] = entry
        return out

    def _put_trusted(self, entry: TrustedKey) -> None:
        self.trust_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomically(
            self.trust_dir / f"{entry.key_id}.json", json.dumps(entry.to_json(), indent=2).encode(), 0o644
        )

    def retire(self, key_id: str) -> TrustedKey:
        """Stop accepting ``key_id`` (it stays listed as retired); an active key cannot be retired."""
        entry = self.trusted().get(key_id)
        if entry is None:
            msg = f"Key {key_id} is not in the trust store."
            raise KeyStoreError(msg)
        if self.active_key_id(entry.signer) == key_id:
            msg = (
                f"Key {key_id} is the key {entry.signer} signs with now: "
                f"run `sgb keys rotate {entry.signer}` first."
            )
            raise KeyStoreError(msg)
        if entry.retired:
            return entry
        retired = replace(entry, retired_at=_now())
        self._put_trusted(retired)
        log.info("signing key retired", signer=entry.signer, key_id=key_id)
        return retired

    def export(self, name: str) -> TrustedKey:
        """The trust entry of a key id, or of a signer's active key, to give to another machine."""
        if SIGNER_PATTERN.match(name) and not KEY_ID_PATTERN.match(name):
            key_id = self.active_key_id(name)
            if key_id is None:
                msg = f"Signer {name} has no key here yet: run `sgb keys rotate {name}` to make one."
                raise KeyStoreError(msg)
            name = key_id
        entry = self.trusted().get(name)
        if entry is None:
            msg = f"Key {name} is not in the trust store."
            raise KeyStoreError(msg)
        return entry

    def trust(self, data: Any, where: str) -> TrustedKey:
        """Add (or update) a public key from another machine; a retired key is never made valid again."""
        entry = TrustedKey.from_json(data, where)
        current = self.trusted(strict=False).get(entry.key_id)
        if current is not None and current.retired and not entry.retired:
            entry = current
        self._put_trusted(entry)
        return entry
