"""The police connector's CSV and JSON exports through the shipped mapping files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.police import PoliceMapper, load_mapping, reader_for
from connectors.police import synthetic as syn

from .fuzzkit import FUZZ, MARKER, check, count, hostile_text, mutated, run_file

MAPPINGS = Path(__file__).resolve().parents[2] / "connectors" / "mappings"
DOMESTIC = load_mapping(MAPPINGS / "police-domestic-abuse.yaml")
MISSING = load_mapping(MAPPINGS / "police-missing-episode.yaml")
EXPLOIT = load_mapping(MAPPINGS / "police-exploitation-concern.yaml")


def _csv(columns: list[str], rows: list[dict[str, str]]) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


DOMESTIC_ROWS = syn.domestic_abuse_rows(3, random.Random(11))
MISSING_ROWS = syn.missing_episode_rows(3, random.Random(12))
EXPLOIT_RECORDS = syn.exploitation_concerns(3, random.Random(13))
SEEDS = {
    "domestic": (DOMESTIC, "x.csv", _csv(list(syn.DOMESTIC_ABUSE_COLUMNS), DOMESTIC_ROWS)),
    "missing": (MISSING, "x.csv", _csv(list(syn.MISSING_EPISODE_COLUMNS), MISSING_ROWS)),
    "exploitation": (EXPLOIT, "x.json", json.dumps({"concerns": EXPLOIT_RECORDS}).encode()),
}


def _run(workdir: Path, name: str, data: bytes) -> None:
    mapping, file_name, _ = SEEDS[name]
    path = workdir / f"police-{name}-{file_name}"
    path.write_bytes(data)
    check(run_file(reader_for(mapping, None), PoliceMapper(mapping), path))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutated_exports(workdir: Path, name: str, data: st.DataObject) -> None:
    count(f"police {name}: mutated file")
    _run(workdir, name, data.draw(mutated(SEEDS[name][2])))


@FUZZ
@given(st.integers(0, 2), st.sampled_from(list(syn.DOMESTIC_ABUSE_COLUMNS)), hostile_text())
def test_domestic_abuse_hostile_values(workdir: Path, row: int, column: str, value: str) -> None:
    count("police domestic: hostile value")
    rows = [dict(r) for r in DOMESTIC_ROWS]
    rows[row][column] = value
    _run(workdir, "domestic", _csv(list(syn.DOMESTIC_ABUSE_COLUMNS), rows))


@FUZZ
@given(st.integers(0, 2), st.sampled_from(list(syn.MISSING_EPISODE_COLUMNS)), hostile_text())
def test_missing_episode_hostile_values(workdir: Path, row: int, column: str, value: str) -> None:
    count("police missing: hostile value")
    rows = [dict(r) for r in MISSING_ROWS]
    rows[row][column] = value
    _run(workdir, "missing", _csv(list(syn.MISSING_EPISODE_COLUMNS), rows))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(st.integers(0, 2), st.data(), JSON_VALUES)
@example(0, None, 10**400)  # a number no Avro long holds
@example(0, None, [[[[[MARKER]]]]])  # wrong type, nested
def test_exploitation_json_wrong_types(
    workdir: Path, row: int, data: st.DataObject | None, value: object
) -> None:
    count("police exploitation: wrong types")
    records = json.loads(json.dumps(EXPLOIT_RECORDS))
    paths = _paths(records[row])
    where = data.draw(st.sampled_from(paths)) if data is not None else paths[0]
    node = records[row]
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    _run(workdir, "exploitation", json.dumps({"concerns": records}).encode())


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


DEEP = b"[" * 100_000 + b"]" * 100_000
HOSTILE_DOCUMENTS = {
    "deep array at the records path": b'{"concerns": ' + DEEP + b"}",
    "deep object in a record": b'{"concerns": [' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
    "deep array as the document": DEEP,
    "a number of 10000 digits": b'{"concerns": [' + b"9" * 10_000 + b"]}",
    "a lone surrogate": b'{"concerns": [{"personId": "\\ud800"}]}',
    "a NUL in a string": b'{"concerns": [{"personId": "a\x00b"}]}',
    "invalid UTF-8": b'\xff\xfe{"concerns": []}',
    "empty": b"",
}


@pytest.mark.parametrize("name", ["x.json", "x.ndjson"])
@pytest.mark.parametrize("kind", sorted(HOSTILE_DOCUMENTS))
def test_hostile_json_documents(workdir: Path, name: str, kind: str) -> None:
    """Regression: a document nested deeper than the interpreter's recursion limit crashed the
    reader with RecursionError; it is now a file (or line) that is not valid JSON."""
    count("police exploitation: hostile document")
    path = workdir / f"police-hostile-{name}"
    data = HOSTILE_DOCUMENTS[kind]
    path.write_bytes(data.replace(b"\n", b" ") if name.endswith("ndjson") else data)
    out = run_file(reader_for(EXPLOIT, None), PoliceMapper(EXPLOIT), path)
    check(out)
    assert not out.events
