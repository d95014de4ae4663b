"""The JSON shape of Avro records: field names as in the ``.avsc`` files, dates as
``YYYY-MM-DD``, times as ISO 8601 with a zone, bytes as base64.

Used where people read or write events as files (``sgb policy evaluate``, the jsonl
sink, the demo); Kafka carries Avro. This converts shapes; whether the values are what the
schema and the identifier rules allow is :func:`schemas.validation.validate_event`'s job.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from typing import Any

from schemas.exceptions import SchemaError
from schemas.loader import load
from schemas.walker import named_types

_NAMED_CACHE: dict[str, dict[str, Any]] = {}


def _named(schema: dict[str, Any]) -> dict[str, Any]:
    key = schema.get("name", "")
    if key in _NAMED_CACHE:
        return _NAMED_CACHE[key]
    out = named_types(schema)
    _NAMED_CACHE[key] = out
    return out


def details_branch(event_type: str) -> str:
    """The details record name for an event type (``DOMESTIC_ABUSE_INCIDENT`` -> ``DomesticAbuseIncident``)."""
    return "".join(part.capitalize() for part in event_type.split("_"))


def event_from_json(obj: dict[str, Any]) -> dict[str, Any]:
    """Convert a SafeguardingEvent from its JSON shape; raises ``SchemaError`` naming the field."""
    schema = load("SafeguardingEvent")
    hint = details_branch(str(obj.get("event_type", "")))
    return from_json(schema, obj, _named(schema), hint, "")  # type: ignore[no-any-return]


def record_from_json(name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Convert any top-level record (ConsentRecord, ChildStatus, ...) from its JSON shape."""
    schema = load(name)
    return from_json(schema, obj, _named(schema), None, "")  # type: ignore[no-any-return]


def from_json(node: Any, value: Any, named: dict[str, Any], hint: str | None, path: str) -> Any:
    """Convert ``value`` (JSON shape) to the Python shape fastavro writes."""
    if isinstance(node, str):
        if node in named:
            return from_json(named[node], value, named, hint, path)
        return value
    if isinstance(node, list):
        if value is None:
            if "null" in node:
                return None
            msg = f"Field {path or '(root)'} must not be null."
            raise SchemaError(msg)
        branches = [b for b in node if b != "null"]
        if len(branches) == 1:
            return from_json(branches[0], value, named, hint, path)
        for branch in branches:
            resolved = named.get(branch, branch) if isinstance(branch, str) else branch
            if isinstance(resolved, dict) and resolved.get("name") == hint:
                return from_json(resolved, value, named, hint, path)
        msg = (
            f"Field {path} does not say which of its types it is (the event type selects the details record)."
        )
        raise SchemaError(msg)
    kind = node.get("type")
    if kind == "record":
        if not isinstance(value, dict):
            msg = f"Field {path or '(root)'} must be an object."
            raise SchemaError(msg)
        out = {}
        for field in node["fields"]:
            name = field["name"]
            sub = f"{path}.{name}" if path else name
            if name in value:
                out[name] = from_json(field["type"], value[name], named, hint, sub)
            elif "default" in field:
                out[name] = field["default"]
            else:
                msg = f"Field {sub} is required."
                raise SchemaError(msg)
        unknown = set(value) - {f["name"] for f in node["fields"]}
        if unknown:
            msg = f"Field {path or '(root)'} has unknown members: {', '.join(sorted(unknown))}."
            raise SchemaError(msg)
        return out
    if kind == "array":
        if not isinstance(value, list):
            msg = f"Field {path} must be a list."
            raise SchemaError(msg)
        return [from_json(node["items"], item, named, hint, f"{path}[]") for item in value]
    if kind == "map":
        if not isinstance(value, dict):
            msg = f"Field {path} must be an object."
            raise SchemaError(msg)
        return {k: from_json(node["values"], v, named, hint, f"{path}.{k}") for k, v in value.items()}
    logical = node.get("logicalType")
    if logical == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            msg = f"Field {path} must be a date as YYYY-MM-DD."
            raise SchemaError(msg) from None
    if logical in ("timestamp-millis", "timestamp-micros") and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            msg = f"Field {path} must be a time in ISO 8601 with a zone."
            raise SchemaError(msg) from None
        if parsed.tzinfo is None:
            msg = f"Field {path} must be a time in ISO 8601 with a zone."
            raise SchemaError(msg)
        return parsed
    if kind == "bytes" and isinstance(value, str):
        return base64.b64decode(value)
    if isinstance(kind, (dict, list, str)) and not isinstance(kind, str):
        return from_json(kind, value, named, hint, path)
    if isinstance(kind, str) and kind in named:
        return from_json(named[kind], value, named, hint, path)
    return value


def to_json(value: Any) -> Any:
    """Convert a decoded record to its JSON shape."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items() if k != "-type"}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
