"""Avro schema-resolution rules, used to prove a new schema can read data written with an
older one (backward compatibility).

Apache Avro's own checker (the ``avro`` package's ``ReaderWriterCompatibilityChecker``) is the
authority: a pair it refuses is refused, whatever the readable walk below says. The walk
exists to name the field in words a schema author can act on; when the two disagree the
stricter answer wins (fail closed), and Avro's own message is given.
"""

from __future__ import annotations

import json
from typing import Any

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.errors import AvroException
from avro.schema import parse

from schemas.walker import named_types

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _resolve(node: Any, named: dict[str, Any]) -> Any:
    while isinstance(node, str) and node in named:
        node = named[node]
    if isinstance(node, dict) and isinstance(node.get("type"), (dict, list)) and "name" not in node:
        return _resolve(node["type"], named)
    if (
        isinstance(node, dict)
        and node.get("type") in _PRIMITIVES
        and len(node) <= 2
        and "logicalType" not in node
    ):
        return node["type"]
    return node


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union"
    return str(node.get("type"))


def incompatibilities(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer`` (empty when it can)."""
    r_named: dict[str, Any] = {}
    w_named: dict[str, Any] = {}
    named_types(reader, r_named)
    named_types(writer, w_named)
    problems: list[str] = []
    _check(reader, writer, r_named, w_named, "", problems, set())
    return problems + [p for p in avro_incompatibilities(reader, writer) if p not in problems]


def avro_incompatibilities(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Apache Avro's verdict: why its checker says ``reader`` cannot read ``writer``'s data."""
    try:
        result = ReaderWriterCompatibilityChecker().get_compatibility(  # type: ignore[no-untyped-call]
            parse(json.dumps(reader)), parse(json.dumps(writer))
        )
    except (AvroException, TypeError, ValueError) as exc:
        return [f"Apache Avro cannot parse the schemas ({exc})"]
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted(kind.name for kind in result.incompatibilities)) or "incompatible"
    where = ", ".join(sorted(result.locations))
    said = "; ".join(sorted(result.messages))
    return [f"Apache Avro's checker refuses it ({kinds} at {where}: {said})"]


def _check(
    r: Any,
    w: Any,
    rn: dict[str, Any],
    wn: dict[str, Any],
    path: str,
    out: list[str],
    seen: set[tuple[str, str]],
) -> None:
    r, w = _resolve(r, rn), _resolve(w, wn)
    rk, wk = _kind(r), _kind(w)
    where = path or "(root)"
    if wk == "union":
        for branch in w:
            _check(r, branch, rn, wn, path, out, seen)
        return
    if rk == "union":
        if not any(_matches(_resolve(b, rn), w) for b in r):
            out.append(f"field {where}: the new type has no branch for the old type {_name(w)}")
            return
        for b in r:
            if _matches(_resolve(b, rn), w):
                _check(b, w, rn, wn, path, out, seen)
                return
        return
    if rk != wk and not (wk in _PROMOTIONS and rk in _PROMOTIONS[wk]):
        out.append(f"field {where}: type changed from {_name(w)} to {_name(r)}")
        return
    if rk in ("record", "enum", "fixed") and not _same_name(r, w):
        out.append(f"field {where}: {rk} {_name(w)} was renamed to {_name(r)} (old data names {_name(w)})")
        return
    if rk == "record":
        key = (r["name"], w["name"])
        if key in seen:
            return
        seen.add(key)
        written = {f["name"]: f for f in w["fields"]}
        for field in r["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            old = written.get(field["name"])
            if old is None:
                for alias in field.get("aliases", ()):
                    old = written.get(alias)
            if old is None:
                if "default" not in field:
                    out.append(f"field {sub} was added without a default (or a required field was removed)")
                continue
            _check(field["type"], old["type"], rn, wn, sub, out, seen)
    elif rk == "enum":
        missing = set(w["symbols"]) - set(r["symbols"])
        if missing and "default" not in r:
            out.append(f"field {where}: enum {r['name']} lost symbol(s) {', '.join(sorted(missing))}")
    elif rk == "array":
        _check(r["items"], w["items"], rn, wn, f"{path}[]", out, seen)
    elif rk == "map":
        _check(r["values"], w["values"], rn, wn, f"{path}{{}}", out, seen)
    elif rk == "fixed" and r.get("size") != w.get("size"):
        out.append(f"field {where}: fixed size changed")


def _same_name(r: dict[str, Any], w: dict[str, Any]) -> bool:
    """A reader's named type reads a writer's when the names match or the reader lists the
    writer's full name among its aliases (the Avro specification's rule)."""
    if r.get("name") == w.get("name"):
        return True
    # Namespaces may be inherited here, so compare short names; Avro's checker above holds
    # the full names to the rule.
    short = str(w.get("name")).rsplit(".", 1)[-1]
    return any(str(alias).rsplit(".", 1)[-1] == short for alias in r.get("aliases") or ())


def _matches(r: Any, w: Any) -> bool:
    rk, wk = _kind(r), _kind(w)
    if rk in ("record", "enum", "fixed") and rk == wk:
        return _same_name(r, w)
    return rk == wk or (wk in _PROMOTIONS and rk in _PROMOTIONS[wk])


def _name(node: Any) -> str:
    if isinstance(node, dict):
        return str(node.get("name") or node.get("type"))
    return str(node)
