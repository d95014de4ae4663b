"""Streaming XML for returns that can be large: entities and DTDs refused, elements cleared.

``defusedxml`` refuses a document type declaration, entity declarations and external
references outright (no entity expansion, no network, no local file read), and the
document is read with ``iterparse`` one record element at a time: each record is handed
over, then removed from its parent, so memory stays bounded whatever the file's size (a
record element lives on only while something still holds it: a record's :func:`lazy_bytes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, tostring
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from connectors.exceptions import SourceFileError

#: The deepest element nesting a return may have (CIN and CTF need under 10); deeper is refused,
#: so a record cannot be nested so deep that writing it back out (for a dead letter) recurses.
MAX_DEPTH = 64


@lru_cache(maxsize=1024)  # a return has a few dozen names, met hundreds of thousands of times
def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def text(elem: Element | None, name: str) -> str | None:
    """The stripped text of ``elem``'s direct child ``name`` (any namespace); None if absent or empty."""
    if elem is None:
        return None
    for child in elem:
        if local(child.tag) == name:
            value = (child.text or "").strip()
            return value or None
    return None


def child(elem: Element | None, name: str) -> Element | None:
    """``elem``'s first direct child called ``name``."""
    if elem is None:
        return None
    for item in elem:
        if local(item.tag) == name:
            return item
    return None


def children(elem: Element | None, name: str) -> list[Element]:
    """``elem``'s direct children called ``name``, in order."""
    if elem is None:
        return []
    return [item for item in elem if local(item.tag) == name]


def stream(path: Path, source: str, record_tag: str, header_tag: str) -> Iterator[tuple[str, Element, int]]:
    """``("header", element, n)`` once the header is read, then ``("record", element, n)`` per
    record element (``n`` counts records from 1). Each record is removed from the tree after
    the caller has resumed, whole (not cleared), so that what the caller kept of it, such as
    :func:`lazy_bytes`, still writes it out as it was read. Raises :class:`SourceFileError` if the file is not well-formed XML
    or declares entities or a DTD."""
    parents: list[Element] = []
    count = 0
    try:
        for event, elem in iterparse(str(path), events=("start", "end"), forbid_dtd=True):
            name = local(elem.tag)
            if event == "start":
                parents.append(elem)
                if len(parents) > MAX_DEPTH:
                    msg = f"File {source} nests elements more than {MAX_DEPTH} deep, which no return does."
                    raise SourceFileError(msg)
                continue
            parents.pop()
            if name == header_tag:
                yield "header", elem, 0
            elif name == record_tag:
                count += 1
                yield "record", elem, count
                if parents:
                    parents[-1].remove(elem)
    except DefusedXmlException:
        msg = f"File {source} declares a DTD or entities, which are refused."
        raise SourceFileError(msg) from None
    except ParseError as exc:
        msg = f"File {source} is not well-formed XML (line {exc.position[0]})."
        raise SourceFileError(msg) from None
    except (LookupError, ValueError):  # an unknown encoding, or one expat cannot read (UTF-7)
        msg = f"File {source} cannot be read in the encoding it declares."
        raise SourceFileError(msg) from None


def check(path: Path, source: str, record_tag: str = "", header_tag: str = "") -> None:
    """Parse the whole file as :func:`stream` does, building nothing; raises :class:`SourceFileError`
    for what it refuses, with the same reason (so a file truncated part-way is refused before any
    of it is published). Expat alone, with no element built: a fifth of :func:`stream`'s cost."""
    parser = expat.ParserCreate()
    depth = 0

    def start(name: str, attributes: Any) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            msg = f"File {source} nests elements more than {MAX_DEPTH} deep, which no return does."
            raise SourceFileError(msg)

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def refused(*args: Any) -> int:
        raise _Declared

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    # what defusedxml refuses in stream(): a DTD, entity declarations, external references
    parser.StartDoctypeDeclHandler = refused
    parser.EntityDeclHandler = refused
    parser.UnparsedEntityDeclHandler = refused
    parser.ExternalEntityRefHandler = refused
    try:
        with path.open("rb") as fh:
            parser.ParseFile(fh)
    except _Declared:
        msg = f"File {source} declares a DTD or entities, which are refused."
        raise SourceFileError(msg) from None
    except expat.ExpatError as exc:
        msg = f"File {source} is not well-formed XML (line {exc.lineno})."
        raise SourceFileError(msg) from None
    except (LookupError, ValueError):  # an unknown encoding, or one expat cannot read (UTF-7)
        msg = f"File {source} cannot be read in the encoding it declares."
        raise SourceFileError(msg) from None


class _Declared(Exception):
    """A DTD or entity declaration met by :func:`check`."""


def count_tag(path: Path, tag: bytes) -> int:
    """Roughly how many ``<tag>`` elements a file holds (for a progress bar), counted in bytes."""
    needle = b"<" + tag + b">"
    total = 0
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            data = tail + chunk
            total += data.count(needle)
            tail = data[-len(needle) + 1 :]
    return total


def as_bytes(elem: Any) -> bytes:
    """The element as XML bytes (for a dead letter)."""
    return bytes(tostring(elem, encoding="utf-8"))


def lazy_bytes(elem: Element) -> Callable[[], bytes]:
    """What makes the element's XML bytes when a dead letter asks (``SourceRecord.raw_of``):
    writing every record out as it is read would cost a third of a return's reading."""
    return partial(as_bytes, elem)
