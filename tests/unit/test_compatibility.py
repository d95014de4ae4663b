"""Compatibility follows Apache Avro: a pair its checker (and fastavro's reader) refuses is
refused, so ``sgb schemas check`` cannot approve a change that makes old messages unreadable."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import fastavro
import pytest

from schemas.compatibility import incompatibilities
from schemas.governance import RELEASED_DIR, released_versions

PLAN = {
    "type": "record",
    "name": "Plan",
    "namespace": "sg.test",
    "fields": [
        {"name": "id", "type": "string"},
        {
            "name": "category",
            "type": {"type": "enum", "name": "Category", "symbols": ["NEGLECT", "EMOTIONAL"]},
        },
        {
            "name": "worker",
            "type": {"type": "record", "name": "Worker", "fields": [{"name": "team", "type": "string"}]},
        },
    ],
}
DATUM = {"id": "p-1", "category": "NEGLECT", "worker": {"team": "east"}}


def _renamed(schema: dict[str, Any], old: str, new: str, *, alias: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == old and node.get("type") in ("record", "enum", "fixed"):
                node["name"] = new
                if alias:
                    node["aliases"] = [f"sg.test.{old}"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out


def _fastavro_reads(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(writer), DATUM)
    buffer.seek(0)
    try:
        fastavro.schemaless_reader(buffer, fastavro.parse_schema(writer), fastavro.parse_schema(reader))
    except Exception:
        return False
    return True


@pytest.mark.parametrize("renamed", ["Worker", "Category"])
def test_a_renamed_record_or_enum_is_refused(renamed: str) -> None:
    reader = _renamed(PLAN, renamed, f"{renamed}V2")
    assert not _fastavro_reads(reader, PLAN)  # old messages really are unreadable
    problems = incompatibilities(reader=reader, writer=PLAN)
    assert problems
    assert any(f"{renamed} was renamed" in p for p in problems), problems
    assert any("Apache Avro" in p and "name_mismatch" in p for p in problems), problems


def test_a_rename_that_keeps_the_old_name_as_alias_is_accepted() -> None:
    reader = _renamed(PLAN, "Worker", "Caseworker", alias=True)
    assert incompatibilities(reader=reader, writer=PLAN) == []


def test_a_renamed_nested_record_in_the_released_event_is_refused() -> None:
    (released,) = released_versions("SafeguardingEvent", RELEASED_DIR)[:1]
    old = json.loads(released.read_text(encoding="utf-8"))
    text = json.dumps(old)
    assert '"name": "Address"' in text
    new = json.loads(text.replace('"name": "Address"', '"name": "PostalAddress"'))
    assert incompatibilities(reader=new, writer=old)


def test_identical_schemas_are_compatible() -> None:
    assert incompatibilities(reader=PLAN, writer=copy.deepcopy(PLAN)) == []
