"""Keys behind one interface. The embedded default is a local key directory, created on first
run with owner-only permissions and never committed."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Protocol

from broker.exceptions import SgbError


class KeyProvider(Protocol):
    """Where secret keys come from."""

    def secret(self, name: str) -> bytes:
        """The 32-byte secret called ``name``, created if this provider may create it."""
        ...


class LocalKeyDirectory:
    """Secrets as files in a directory readable only by the owner.

    Args:
        directory: where the key files live (``<state_dir>/keys`` by default).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def secret(self, name: str) -> bytes:
        path = self.directory / f"{name}.key"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = secrets.token_bytes(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return data
        if len(data) != 32:
            msg = f"Key file {path} is damaged: it must hold exactly 32 bytes."
            raise SgbError(msg)
        return data
