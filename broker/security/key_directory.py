"""Keys behind one interface. The embedded default is a local key directory, created on first
run with owner-only permissions and never committed."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Protocol

from broker.exceptions import SgbError


class KeyProvider(Protocol):
    """Where secret keys come from."""

    def secret(self, name: str) -> bytes:
        """The 32-byte secret called ``name``, created if this provider may create it."""
        ...


def key_provider(directory: Path) -> KeyProvider:
    """The key provider for a state directory's keys: the embedded local key directory.

    Production deployments swap this for a KMS- or HSM-backed provider with the same
    interface; callers hold a :class:`KeyProvider`, never the concrete class.
    """
    return LocalKeyDirectory(directory)


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
            data = self._create(path)
        if len(data) != 32:
            msg = f"Key file {path} is damaged: it must hold exactly 32 bytes."
            raise SgbError(msg)
        return data

    def _create(self, path: Path) -> bytes:
        """Make the key, whole, under its name; if another process made it first, use theirs.

        Processes that start together (two filters, a connector and a filter) race to make
        the same key. The new key is written in full to a private temporary file and then
        linked to its name, which fails if the name exists: a reader never sees a partly
        written key and exactly one key wins.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = secrets.token_bytes(32)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{path.stem}.", suffix=".new")
        try:
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(temporary, path)
            except FileExistsError:
                return path.read_bytes()
            return data
        finally:
            os.unlink(temporary)
