"""Load ``.avsc`` files, inlining named types from sibling files."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from schemas.exceptions import SchemaError

SCHEMA_DIR = Path(__file__).parent / "avro"
NAMESPACE = "uk.sgb"

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _read(name: str, directory: Path) -> dict[str, Any]:
    short = name.rsplit(".", 1)[-1]
    path = directory / f"{short}.avsc"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"Schema type {name!r} is referenced but {path.name} does not exist in {directory}."
        raise SchemaError(msg) from None
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"Schema file {path.name} is not valid JSON: {exc.msg} at line {exc.lineno}."
        raise SchemaError(msg) from None
    return data


def _inline(node: Any, directory: Path, seen: set[str]) -> Any:
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        short = node.rsplit(".", 1)[-1]
        if short in seen:
            return node
        seen.add(short)
        return _inline(_read(node, directory), directory, seen)
    if isinstance(node, list):
        return [_inline(branch, directory, seen) for branch in node]
    if isinstance(node, dict):
        kind = node.get("type")
        out = dict(node)
        if kind in ("record", "error"):
            seen.add(node["name"])
            out["fields"] = [
                {**field, "type": _inline(field["type"], directory, seen)} for field in node["fields"]
            ]
        elif kind == "array":
            out["items"] = _inline(node["items"], directory, seen)
        elif kind == "map":
            out["values"] = _inline(node["values"], directory, seen)
        elif kind in ("enum", "fixed"):
            seen.add(node["name"])
        elif isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
            out["type"] = _inline(kind, directory, seen)
        return out
    return node


def load(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Return the named top-level schema as a self-contained JSON object, tags and docs kept.

    Args:
        name: the record's name, for example ``"SafeguardingEvent"``.
        directory: where the ``.avsc`` files are; the shipped catalogue by default.
    """
    if directory is None:
        loaded: dict[str, Any] = json.loads(_cached_text(name))
        return loaded
    return _inline(name, directory, set())  # type: ignore[no-any-return]


@cache
def _cached_text(name: str) -> str:
    return json.dumps(_inline(name, SCHEMA_DIR, set()), sort_keys=True)


@cache
def parsed(name: str) -> Any:
    """Return the fastavro-parsed form of a shipped top-level schema (cached)."""
    import fastavro  # here, not at the top: reading the JSON schemas (the engine) needs no codec

    try:
        return fastavro.parse_schema(load(name))
    except (fastavro.schema.SchemaParseException, ValueError, KeyError, TypeError) as exc:
        msg = f"Schema {name} is not valid Avro: {exc}."
        raise SchemaError(msg) from None


def load_all_names(directory: Path | None = None) -> list[str]:
    """Names of every named type with a file in the catalogue, sorted."""
    return sorted(p.stem for p in (directory or SCHEMA_DIR).glob("*.avsc"))
