"""MLLP framing on an asyncio stream: blocks of at most a given size, with a timeout.

MLLP wraps each message as ``<VT> message <FS><CR>``. :class:`BlockReader` returns each
block's bytes; a block larger than ``limit`` is read to its end (so the connection stays in
step and can carry on) and returned as an :class:`Oversized` holding only its first bytes,
so the listener can answer ``AR`` for it instead of dropping the connection. A peer that
sends nothing for ``idle_timeout`` seconds, between blocks or in the middle of one (a
half-open connection), raises ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

START = b"\x0b"
END = b"\x1c\r"
#: How much of an oversized block is kept: enough for its MSH, its dead letter's evidence.
HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Oversized:
    """A block over the limit: its size and its first :data:`HEAD` bytes."""

    size: int
    head: bytes


class BlockReader:
    """Reads MLLP blocks from one connection.

    Args:
        reader: the connection's stream.
        limit: the largest block, in bytes, read whole.
        idle_timeout: seconds without a byte from the peer before ``TimeoutError``.
    """

    __slots__ = ("_buffer", "idle_timeout", "limit", "reader")

    def __init__(self, reader: asyncio.StreamReader, limit: int, idle_timeout: float) -> None:
        self.reader = reader
        self.limit = limit
        self.idle_timeout = idle_timeout
        self._buffer = b""

    async def _more(self) -> bool:
        chunk = await asyncio.wait_for(self.reader.read(1 << 16), self.idle_timeout)
        self._buffer += chunk
        return bool(chunk)

    async def read_block(self) -> bytes | Oversized | None:
        """The next block, an :class:`Oversized` one, or None when the peer closed between blocks.

        Raises ``TimeoutError`` when the peer is silent too long and
        ``asyncio.IncompleteReadError`` when it closes in the middle of a block.
        """
        while True:
            start = self._buffer.find(START)
            if start >= 0:
                self._buffer = self._buffer[start + 1 :]
                break
            self._buffer = b""  # bytes between blocks are noise (keep-alive line ends)
            if not await self._more():
                return None
        kept = bytearray()
        size = 0
        while True:
            end = self._buffer.find(END)
            piece = self._buffer[:end] if end >= 0 else self._buffer[:-1]
            self._buffer = self._buffer[end + len(END) :] if end >= 0 else self._buffer[-1:]
            size += len(piece)
            if size <= self.limit:
                kept += piece
            elif len(kept) < HEAD or len(kept) > HEAD:
                kept += piece[: max(HEAD - len(kept), 0)]
                del kept[HEAD:]
            if end >= 0:
                return bytes(kept) if size <= self.limit else Oversized(size, bytes(kept))
            if not await self._more():
                raise asyncio.IncompleteReadError(bytes(kept[:0]), None)


def frame(message: bytes) -> bytes:
    """A message in MLLP framing."""
    return START + message + END
