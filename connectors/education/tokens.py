"""Per-school bearer tokens for the webhook, stored hashed.

The tokens file has one line per token: ``<URN> <sha256 of the token, hex>``. A token is
32 random bytes (URL-safe base64), shown once when it is made and never stored in clear;
a school's token is revoked by deleting its line. SHA-256 without a salt is enough for
random tokens of this length (they cannot be guessed from a dictionary).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from connectors.exceptions import ConnectorError
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import validate_school_urn


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The schools' token hashes in ``path``.

    Args:
        path: the tokens file (created by :meth:`add` if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_hash: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        """Read the file again (a new school's token works without a restart)."""
        by_hash: dict[str, str] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) != 2 or len(parts[1]) != 64:
                    msg = f"Tokens file {self.path}, line {number}, is not '<URN> <sha256>'."
                    raise ConnectorError(msg)
                by_hash[parts[1].lower()] = parts[0]
        self._by_hash = by_hash

    def __len__(self) -> int:
        return len(self._by_hash)

    def school(self, token: str) -> str | None:
        """The URN whose token this is, or None."""
        return self._by_hash.get(_hash(token)) if token else None

    def add(self, urn: str) -> str:
        """Make a new token for the school ``urn``, store its hash and return it (shown once)."""
        try:
            urn = validate_school_urn(urn)
        except InvalidIdentifier as exc:
            raise ConnectorError(str(exc)) from None
        token = secrets.token_urlsafe(32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{urn} {_hash(token)}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._by_hash[_hash(token)] = urn
        return token
