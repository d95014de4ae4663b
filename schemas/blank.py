"""A minimal valid value for any schema node: the content of a notice that carries none.

An erasure notice (``sgb erase``) must be a well-formed ``SafeguardingEvent`` of the erased
event's type, yet carry nothing about the child: its details are this blank record (nulls
where the schema allows, plain placeholders where it does not).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from schemas.jsonform import details_branch
from schemas.loader import load

_PLAIN = {
    "string": "x",
    "boolean": False,
    "int": 0,
    "long": 0,
    "float": 0.0,
    "double": 0.0,
    "bytes": b"",
    "null": None,
}


def blank(node: Any, named: dict[str, Any]) -> Any:
    """A minimal valid value for a schema node: defaults where there are, plain values otherwise."""
    if isinstance(node, str):
        if node in named:
            return blank(named[node], named)
        return _PLAIN[node]
    if isinstance(node, list):
        return None if "null" in node else blank(node[0], named)
    kind = node.get("type")
    if kind == "record":
        named[node["name"]] = node
        return {
            f["name"]: (f["default"] if "default" in f else blank(f["type"], named)) for f in node["fields"]
        }
    if kind == "enum":
        named[node["name"]] = node
        return node["symbols"][0]
    if kind == "array":
        return []
    if kind == "map":
        return {}
    if node.get("logicalType") == "date":
        return date(2026, 11, 1)
    if node.get("logicalType") == "timestamp-millis":
        return datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    return blank(kind, named)


def blank_details(event_type: str) -> dict[str, Any]:
    """The blank details record of an event type."""
    record: dict[str, Any] = blank(load(details_branch(event_type)), {})
    return record
