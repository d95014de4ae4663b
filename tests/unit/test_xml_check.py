"""A return is checked whole before any of it is published; the check, which builds no element,
refuses exactly the files that reading refuses, with the same reason."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.exceptions import SourceFileError
from connectors.local_authority import synthetic as syn
from connectors.local_authority import xmlstream

CASES = {
    "well-formed": b"<a><Header/><Child/></a>",
    "latin-1": '<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\xe9</a>'.encode("latin-1"),
    "64 deep": b"<a>" * 64 + b"</a>" * 64,
    "65 deep": b"<a>" * 65 + b"</a>" * 65,
    "a DTD with an entity": b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
    "an external DTD": b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>',
    "UTF-7": b'<?xml version="1.0" encoding="UTF-7"?><a/>',
    "an unknown encoding": b'<?xml version="1.0" encoding="x-unknown"?><a/>',
    "two roots": b"<a/><b/>",
    "empty": b"",
    "a control character": b"<a>\x01</a>",
    "an undefined entity": b"<a>&nope;</a>",
    "unclosed on line 3": b"<a>\n<Child>\n<b></a>",
}


def _reason(action: Callable[[Path, str, str, str], None], path: Path) -> str | None:
    try:
        action(path, path.name, "Child", "Header")
    except SourceFileError as exc:
        return str(exc)
    return None


def _read(path: Path, source: str, record_tag: str, header_tag: str) -> None:
    for _ in xmlstream.stream(path, source, record_tag, header_tag):
        pass


@pytest.mark.parametrize("name", list(CASES))
def test_check_refuses_what_reading_refuses(tmp_path: Path, name: str) -> None:
    path = tmp_path / "return.xml"
    path.write_bytes(CASES[name])
    assert _reason(xmlstream.check, path) == _reason(_read, path)


def test_a_return_cut_short_is_refused_with_its_line(tmp_path: Path) -> None:
    whole = syn.write_cin(tmp_path / "whole.xml", syn.cin_children(200, random.Random(4)))
    data = whole.read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert _reason(xmlstream.check, whole) is None
    reason = _reason(xmlstream.check, cut)
    assert reason is not None and reason.startswith("File cut.xml is not well-formed XML (line ")
    assert reason == _reason(_read, cut)
