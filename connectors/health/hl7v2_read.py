"""HL7 v2 bytes to messages: splitting a file or an MLLP block into messages, decoding each by
the character set its MSH-18 declares, and the reader for files of messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from connectors.exceptions import SourceFileError
from connectors.health.hl7v2 import CONTENT_TYPE, Hl7Message
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord


class Hl7FileReader:
    """Files of HL7 v2 messages (``.hl7``, ``.er7``, ``.txt``, ``.dat``): one or many messages a
    file, batch headers (FHS, BHS, BTS, FTS) ignored, a UTF-8 byte order mark stripped, MLLP
    framing characters (a capture of a feed) treated as message boundaries.

    Each message is decoded by the character set its MSH-18 declares (see
    :func:`decode_message`); one that cannot be decoded is a dead letter of its own, never a
    failure of the whole file. Positions are ``message N`` (1-based, in file order).
    """

    suffixes: tuple[str, ...] = (".hl7", ".er7", ".txt", ".dat")

    def estimate(self, path: Path) -> int:
        return path.read_bytes().count(b"MSH")

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        try:
            data = ref.path.read_bytes()
        except OSError:
            msg = f"File {ref.source} could not be read."
            raise SourceFileError(msg) from None
        for ordinal, raw in enumerate(split_messages(data)):
            parsed = parse_message(raw)
            yield SourceRecord(
                ref.connector,
                ref.source,
                ref.file_id,
                ordinal,
                f"message {ordinal + 1}",
                parsed,
                raw,
                CONTENT_TYPE,
                identity=parsed.identity if isinstance(parsed, Hl7Message) else None,
            )


_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
_BOUNDARY = re.compile(rb"\r\n|\r|\n|\x0b|\x1c")
_BOM = b"\xef\xbb\xbf"


def split_messages(data: bytes) -> list[bytes]:
    """The messages in a file or an MLLP block, each with its segments separated by carriage
    returns. Text before the first MSH is kept as a message of its own (it is then a dead
    letter), so nothing is dropped unseen."""
    messages: list[list[bytes]] = []
    for segment in _BOUNDARY.split(data.removeprefix(_BOM)):
        segment = segment.removeprefix(_BOM)
        if not segment.strip(b" \t\x00"):
            continue
        if segment[:3] in _BATCH_SEGMENTS:
            continue
        if segment.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return [b"\r".join(m) for m in messages]


#: MSH-18 values (HL7 table 0211) to Python codecs. Empty MSH-18 means UTF-8 here, which is
#: also correct for ASCII, HL7's own default.
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}


def declared_charset(raw: bytes) -> str:
    """MSH-18 (its first repetition) as written, upper case; ``""`` when absent."""
    header = raw.split(b"\r", 1)[0]
    if len(header) < 4 or not header.startswith(b"MSH"):
        return ""
    fields = header.split(header[3:4])
    if len(fields) < 18:
        return ""
    value = fields[17].split(b"~", 1)[0]
    return value.decode("latin-1").strip().upper()


def decode_message(raw: bytes) -> str:
    """The message's text in the character set its MSH-18 declares.

    Raises ``ValueError`` in one sentence (naming MSH-18, never the content) when the set is
    one this connector does not read or the bytes are not in it.
    """
    declared = declared_charset(raw)
    codec = CHARSETS.get(declared)
    if codec is None:
        msg = "MSH-18 declares a character set this connector does not read (ASCII, 8859/n or UTF-8)."
        raise ValueError(msg)
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        said = f"MSH-18 ({declared})" if declared else "UTF-8 (MSH-18 is empty)"
        msg = f"The message is not text in the character set {said}; declare its character set in MSH-18."
        raise ValueError(msg) from None


def parse_message(raw: bytes) -> Hl7Message | Malformed:
    """One message's bytes, decoded and parsed, or why not."""
    try:
        return Hl7Message(decode_message(raw))
    except ValueError as exc:
        return Malformed(str(exc))
