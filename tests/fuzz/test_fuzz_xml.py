"""Hostile XML for both XML readers (the CTF and the CIN census): entity bombs, external
entities (a canary file whose content must appear nowhere), DOCTYPEs, deep nesting, huge
text, invalid UTF-8, NUL bytes, wrong encodings.

Each must end as a refused file or per-record outcomes; none may expand an entity or read a
local file, and none may crash or hang.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.education import CtfMapper, CtfReader
from connectors.education import synthetic as edu
from connectors.local_authority import CinCensusReader, LaMapper, LaProfile
from connectors.local_authority import synthetic as la

from .fuzzkit import FUZZ, Outcomes, check, count, mutated, run_file

READERS: dict[str, tuple[Callable[[], Any], Callable[[], Any], str, str]] = {
    "ctf": (CtfReader, CtfMapper, "Pupil", "CTFpupilData"),
    "cin": (
        lambda: CinCensusReader("202"),
        lambda: LaMapper(LaProfile(la_code="202"), "cin-census"),
        "Child",
        "Children",
    ),
}


def _seed(kind: str, folder: Path) -> str:
    if kind == "ctf":
        rng = random.Random(41)
        pupils = [edu.pupil(rng, 1, authorised=40, unauthorised=20), edu.pupil(rng, 2, leaving="2025-06-01")]
        path = edu.write_ctf(folder / "seed-ctf.xml", pupils, dest=("MMM", "MMMM"))
        return path.read_text(encoding="utf-8")
    kids = list(la.cin_children(4, random.Random(42)))
    return la.write_cin(folder / "seed-cin.xml", kids).read_text(encoding="utf-8")


def _body(seed: str) -> str:
    """The seed without its XML declaration."""
    return seed.split("?>", 1)[1]


def _hostile(kind: str, seed: str, canary: Path) -> dict[str, bytes]:
    record, container = READERS[kind][2], READERS[kind][3]
    body = _body(seed)
    url = canary.as_uri()
    laughs = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    first = body.index(f"<{record}>")
    deep = "<x>" * 200_000 + "</x>" * 200_000
    return {
        "billion laughs": f'<?xml version="1.0"?><!DOCTYPE m [{laughs}]>'
        + body.replace("</Header>", "&l9;</Header>"),
        "external entity": f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "{url}">]>'
        + body.replace(f"<{record}>", f"<{record}><UPN>&x;</UPN>", 1),
        "parameter entity": f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY % p SYSTEM "{url}"> %p;]>{body}',
        "external DTD": f'<?xml version="1.0"?><!DOCTYPE m SYSTEM "{url}">{body}',
        "bare DOCTYPE": f"<!DOCTYPE m>{body}",
        "XInclude": body.replace(
            f"<{record}>",
            f'<{record}><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}" parse="text"/>',
            1,
        ),
        "deep nesting in a record": body[:first] + f"<{record}>" + deep + body[first + len(record) + 2 :],
        "deep nesting outside records": body.replace(f"</{container}>", deep + f"</{container}>"),
        "huge text": body.replace("<Header>", "<Header><Note>" + "A" * 5_000_000 + "</Note>", 1),
        "NUL byte": body.replace("<Header>", "<Header>\x00", 1),
        "undeclared prefix": body.replace("<Header>", "<p:Header>", 1),
        "UTF-16 declared, UTF-8 given": '<?xml version="1.0" encoding="UTF-16"?>' + body,
        "unknown encoding": '<?xml version="1.0" encoding="x-sgb-none"?>' + body,
        "UTF-7 declared (found by atheris)": '<?xml version="1.0" encoding="utf-7"?>' + body,
        "processing instruction": body.replace("<Header>", f'<?xml-stylesheet href="{url}"?><Header>', 1),
        "empty": "",
        "truncated": body[: len(body) // 2],
    } | {"invalid UTF-8": None}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def seeds(workdir: Path) -> dict[str, str]:
    return {kind: _seed(kind, workdir) for kind in READERS}


def _run(kind: str, path: Path) -> Outcomes:
    reader, mapper, _, _ = READERS[kind]
    return run_file(reader(), mapper(), path)


def _no_canary(out: Outcomes, content: str) -> None:
    for reason in out.reasons():
        assert content not in reason
    for record, event in out.events:
        assert content not in repr(event)
        assert content.encode() not in record.payload()


HOSTILE_NAMES = sorted(_hostile("ctf", "<?xml?><a><Header></Header><Pupil></Pupil></a>", Path("/x")))


@pytest.mark.parametrize("kind", sorted(READERS))
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_xml(
    workdir: Path, seeds: dict[str, str], canary: tuple[Path, str], kind: str, name: str
) -> None:
    count(f"xml {kind}: hostile document")
    documents = _hostile(kind, seeds[kind], canary[0])
    path = workdir / f"hostile-{kind}.xml"
    document = documents[name]
    if document is None:
        path.write_bytes(seeds[kind].encode().replace(b"<Header>", b"<Header>\xff\xfe\xc3\x28", 1))
    else:
        path.write_bytes(document.encode("utf-8"))
    out = _run(kind, path)
    check(out)
    _no_canary(out, canary[1])
    if name in ("billion laughs", "external entity", "parameter entity", "external DTD", "bare DOCTYPE"):
        assert out.file_error and "DTD or entities" in out.file_error and not out.events


@FUZZ
@given(st.sampled_from(sorted(READERS)), st.data())
def test_mutated_xml(
    workdir: Path, seeds: dict[str, str], canary: tuple[Path, str], kind: str, data: st.DataObject
) -> None:
    count(f"xml {kind}: mutated file")
    snippets = [
        f'<!DOCTYPE m [<!ENTITY x SYSTEM "{canary[0].as_uri()}">]>'.encode(),
        b"&x;",
        b"<![CDATA[",
        b"]]>",
        b"<?pi x?>",
        b"<!-- -->",
        b"&#x0;",
        b"&#1114112;",
        b'xmlns="urn:x"',
    ]
    path = workdir / f"mutated-{kind}.xml"
    path.write_bytes(data.draw(mutated(seeds[kind].encode(), snippets)))
    out = _run(kind, path)
    check(out)
    _no_canary(out, canary[1])
