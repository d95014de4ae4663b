"""The health connector: FHIR R4 NDJSON and Bundles, HL7 v2 files, and one HL7 message as the
MLLP listener handles it (parse, map, acknowledge)."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from broker.exceptions import SerdeError
from connectors.exceptions import MappingError, NoEvent
from connectors.health import FhirMapper, FhirReader, Hl7FileReader, Hl7Mapper, load_profile
from connectors.health import synthetic as syn
from connectors.health.hl7v2 import bare_ack
from connectors.health.hl7v2_read import parse_message, split_messages
from connectors.health.mllp_framing import BlockReader, Oversized
from connectors.runtime.readers import Malformed
from connectors.runtime.records import SourceRecord

from .fuzzkit import CODECS, FUZZ, MARKER, check, count, hostile_text, mutated, run_file

MAPPINGS = Path(__file__).resolve().parents[2] / "connectors" / "mappings"
PROFILE = load_profile(MAPPINGS / "health-example.yaml")
RESOURCES = syn.fhir_resources(3, random.Random(21))
NDJSON = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in RESOURCES)
BUNDLE = json.dumps(
    {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(RESOURCES)],
    }
).encode()
XML_BUNDLE = syn.bundle_xml(RESOURCES)
ADT = [syn.adt_message(i, random.Random(22 + i), trigger=t) for i, t in enumerate(("A04", "A01", "A03"))]
HL7_FILE = "\r\n".join(ADT).encode()


def _fhir(workdir: Path, name: str, data: bytes) -> None:
    # Each example in a folder of its own: the reader resolves references across a Bulk Data
    # folder, so an earlier example's file beside this one would lend it its patients.
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        path = Path(folder) / f"health-{name}"
        path.write_bytes(data)
        text = data.decode("utf-8", "replace")
        check(run_file(FhirReader(50), FhirMapper(PROFILE), path), source_text=lambda record: text)


@FUZZ
@given(st.sampled_from(["r.ndjson", "b.json"]), st.data())
def test_mutated_fhir_files(workdir: Path, name: str, data: st.DataObject) -> None:
    count(f"health fhir {name.split('.')[1]}: mutated file")
    _fhir(workdir, name, data.draw(mutated(NDJSON if name.endswith("ndjson") else BUNDLE)))


JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text())
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


@FUZZ
@given(st.integers(0, len(RESOURCES) - 1), st.data(), JSON_VALUES)
@example(1, None, 10**30)  # a number no Avro long holds
@example(1, None, "9999-12-31T23:59:59+14:00")
def test_fhir_wrong_types_and_hostile_values(
    workdir: Path, index: int, data: st.DataObject | None, value: object
) -> None:
    count("health fhir: wrong types")
    resources = json.loads(json.dumps(RESOURCES))
    paths = _paths(resources[index])
    where = data.draw(st.sampled_from(paths)) if data is not None else paths[0]
    node = resources[index]
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    _fhir(workdir, "w.ndjson", b"".join(json.dumps(r).encode() + b"\n" for r in resources))


@FUZZ
@given(mutated(HL7_FILE, [b"\rMSH|^~\\&|", b"\\X00FF\\", b"\\", b"|" * 300, b"^" * 300, b"~" * 300]))
def test_mutated_hl7_files(workdir: Path, data: bytes) -> None:
    count("health hl7 file: mutated")
    path = workdir / "health.hl7"
    path.write_bytes(data)
    check(run_file(Hl7FileReader(), Hl7Mapper(PROFILE), path))


def _field_edits() -> st.SearchStrategy[tuple[int, int, str]]:
    return st.tuples(st.integers(0, 5), st.integers(1, 50), hostile_text())


@FUZZ
@given(st.integers(0, 2), st.lists(_field_edits(), min_size=1, max_size=3))
@example(0, [(4, 44, "20261120213000+9999")])  # an offset beyond a day
@example(0, [(2, 7, "99991231")])
@example(0, [(4, 44, "00010101")])
@example(0, [(0, 2, "")])
def test_hl7_message_as_mllp_handles_it(index: int, edits: list[tuple[int, int, str]]) -> None:
    """Parse, map and encode one message, then build the acknowledgement the listener sends."""
    count("health hl7 mllp message: hostile fields")
    segments = [s.split("|") for s in ADT[index].split("\r")]
    for seg, field, value in edits:
        fields = segments[seg % len(segments)]
        while len(fields) <= field:
            fields.append("")
        fields[field] = value
    block = "\r".join("|".join(f) for f in segments).encode("utf-8", "surrogatepass")
    _handle(block)


@FUZZ
@given(mutated(ADT[0].encode()))
def test_mutated_mllp_block(block: bytes) -> None:
    count("health hl7 mllp message: mutated")
    _handle(block)


def _handle(block: bytes) -> None:
    """What MllpListener.handle does with a block, without Kafka: each message's outcome and ACK."""
    for raw in split_messages(block) or [block]:
        _handle_one(raw)


def _handle_one(raw: bytes) -> None:
    parsed = parse_message(raw)
    if isinstance(parsed, Malformed):
        assert MARKER not in parsed.reason
        bare_ack("AR", parsed.reason)
        return
    message = parsed
    message.ack("AA")
    record = SourceRecord(
        "fuzz", "mllp://x", "mllp:x", 0, "message 1", message, raw, identity=message.identity
    )
    try:
        event = Hl7Mapper(PROFILE)(record)
    except NoEvent:
        return
    except MappingError as exc:
        assert MARKER not in str(exc)
        message.ack("AR", str(exc))
        return
    try:
        CODECS.event.encode(event)
    except SerdeError as exc:
        message.ack("AR", str(exc))


@pytest.mark.parametrize(
    "document",
    [
        b"[" * 100_000,
        b'{"resourceType": "Bundle", "entry": [' + b"[" * 100_000 + b"]}",
        b'{"resourceType": "Bundle", "entry": {"a": 1}}',
        b'{"resourceType": "Bundle", "entry": [1, "x", null, {"resource": 5}]}',
    ],
)
def test_hostile_fhir_documents(workdir: Path, document: bytes) -> None:
    count("health fhir: hostile document")
    _fhir(workdir, "h.json", document)
    _fhir(workdir, "h.ndjson", document)


HL7_TIMES = st.one_of(
    st.from_regex(r"\A\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2})?)?)?)?)?(\.\d{1,4})?([+-]\d{4})?\Z"),
    hostile_text(),
)
TIME_FIELDS = [(4, 44), (4, 45), (2, 7), (1, 2), (1, 6), (0, 6)]  # PV1-44/45, PID-7, EVN-2/6, MSH-7


@FUZZ
@given(st.integers(0, 2), st.sampled_from(TIME_FIELDS), HL7_TIMES)
@example(0, (4, 44), "00010101000000+1400")  # converting to UTC leaves the calendar
@example(0, (2, 7), "99991231235959-1400")
@example(2, (4, 45), "99991231235959-1400")
def test_hl7_times(index: int, where: tuple[int, int], value: str) -> None:
    count("health hl7 mllp message: times")
    segments = [s.split("|") for s in ADT[index].split("\r")]
    fields = segments[where[0]]
    while len(fields) <= where[1]:
        fields.append("")
    fields[where[1]] = value
    _handle("\r".join("|".join(f) for f in segments).encode("utf-8", "surrogatepass"))


FRAMED = b"".join(b"\x0b" + m.encode() + b"\x1c\r" for m in ADT)


@FUZZ
@given(st.one_of(mutated(FRAMED, [b"\x0b", b"\x1c\r", b"\x1c", b"\x0b" * 50]), st.binary(max_size=300)))
@example(b"\x0b" + b"A" * (1 << 20) + b"\x1c\r")  # over the listener's message limit
def test_mllp_stream(stream: bytes) -> None:
    """The MLLP framing of a connection's bytes, with the listener's limit: every block is
    handled as its messages, an oversized one is answered from its head, and a connection
    closed mid-block ends the read."""
    import asyncio

    from connectors.health.mllp import MAX_MESSAGE

    count("health hl7 mllp: framing")

    async def blocks() -> list[bytes | Oversized]:
        stream_reader = asyncio.StreamReader()
        stream_reader.feed_data(stream)
        stream_reader.feed_eof()
        reader = BlockReader(stream_reader, MAX_MESSAGE, 5.0)
        out: list[bytes | Oversized] = []
        while True:
            try:
                block = await reader.read_block()
            except asyncio.IncompleteReadError:
                return out  # what MllpListener._client stops the connection on
            if block is None:
                return out
            out.append(block)

    for block in asyncio.run(blocks()):
        if isinstance(block, Oversized):
            assert block.size > MAX_MESSAGE and len(block.head) <= 64 * 1024
            split_messages(block.head)
        else:
            _handle(block)


@FUZZ
@given(st.data())
def test_mutated_fhir_xml(workdir: Path, data: st.DataObject) -> None:
    count("health fhir xml: mutated file")
    _fhir(
        workdir,
        "b.xml",
        data.draw(
            mutated(
                XML_BUNDLE, [b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", b"&e;", b"<entry>"]
            )
        ),
    )
