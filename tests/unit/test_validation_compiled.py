"""The compiled schema check of validate_event refuses exactly what the schema walker it
replaced refused, with the same sentence, on valid events of all 14 types and on events
with one value anywhere replaced by a value of another type (issue 21, CPU per event)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, NoReturn

import pytest

from schemas.exceptions import InvalidEvent
from schemas.validation import _checker, _envelope
from schemas.walker import details_record_name, resolve
from sgb.simulate.events import Population, Simulator

_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _fail(path: str, what: str) -> NoReturn:
    msg = f"Field {path or '(the event)'} {what}."
    raise InvalidEvent(msg)


# The walker as it was before it was compiled: the reference the compiled check must agree with.
class _Checker:
    """Walks a value along its schema; the first mismatch raises :class:`InvalidEvent`."""

    __slots__ = ("details", "named")

    def __init__(self, named: Mapping[str, Any], details: str) -> None:
        self.named = named
        self.details = details

    def record(self, node: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            _fail(path, "must be a record")
        declared = {field["name"] for field in node["fields"]}
        unknown = [k for k in value if k not in declared and k != "-type"]
        if unknown:
            msg = f"Field {path or '(the event)'} has members the schema does not define: {', '.join(sorted(unknown))}."
            raise InvalidEvent(msg)
        for field in node["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            if field["name"] not in value:
                if "default" in field:
                    continue
                _fail(sub, "is required")
            self.value(field["type"], value[field["name"]], sub)

    def value(self, type_: Any, value: Any, path: str) -> None:
        holds, nullable = resolve(type_, self.named)
        if value is None:
            if not nullable and holds != "null":
                _fail(path, "must not be null")
            return
        if isinstance(holds, list):  # the details union: the event type selects the branch
            branch = self.named.get(self.details)
            if branch is None or not any(resolve(b, self.named)[0] is branch for b in holds):
                _fail(path, "has no record for this event type")
            self.record(branch, value, path)
            return
        if isinstance(holds, str):
            self.primitive(holds, None, value, path)
            return
        kind = holds.get("type")
        if kind == "record":
            self.record(holds, value, path)
        elif kind == "enum":
            if not isinstance(value, str) or value not in holds["symbols"]:
                _fail(path, f"must be one of the {holds['name']} symbols")
        elif kind == "array":
            if not isinstance(value, list):
                _fail(path, "must be a list")
            for item in value:
                self.value(holds["items"], item, f"{path}[]")
        elif kind == "map":
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                _fail(path, "must be a map with text keys")
            for key, item in value.items():
                self.value(holds["values"], item, f"{path}.{key}")
        elif kind == "fixed":
            if not isinstance(value, bytes) or len(value) != holds["size"]:
                _fail(path, f"must be {holds['size']} bytes")
        else:
            self.primitive(str(kind), holds.get("logicalType"), value, path)

    @staticmethod
    def primitive(kind: str, logical: str | None, value: Any, path: str) -> None:
        if logical == "date" and kind == "int":
            if not isinstance(value, date) or isinstance(value, datetime):
                _fail(path, "must be a date")
            return
        if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
            if not isinstance(value, datetime) or value.tzinfo is None:
                _fail(path, "must be a time with a zone")
            return
        if kind in _INT_RANGE:
            low, high = _INT_RANGE[kind]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                _fail(path, "must be a whole number" + (" of 32 bits" if kind == "int" else ""))
        elif kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                _fail(path, "must be a number")
        elif kind == "boolean":
            if not isinstance(value, bool):
                _fail(path, "must be true or false")
        elif kind == "string":
            if not isinstance(value, str):
                _fail(path, "must be text")
        elif kind == "bytes":
            if not isinstance(value, bytes):
                _fail(path, "must be bytes")
        elif kind == "null":
            _fail(path, "must be null")


_ODD: list[Any] = [
    None,
    "",
    "text",
    7,
    -(2**40),
    2**70,
    1.5,
    True,
    [],
    ["a"],
    [1],
    {},
    {"k": "v"},
    {"k": 1},
    b"raw",
    date(2020, 1, 2),
    datetime(2020, 1, 2, tzinfo=UTC),
    datetime(2020, 1, 2),
    "NOT_A_SYMBOL",
]


def _outcome(check: Any, event: Any) -> str:
    try:
        check(event)
    except InvalidEvent as exc:
        return str(exc)
    return "valid"


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


def _replaced(event: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(event, dict):
        return {**event, head: _replaced(event[head], rest, new)}
    return [_replaced(item, rest, new) if i == head else item for i, item in enumerate(event)]


def test_the_compiled_check_agrees_with_the_walker_on_valid_and_broken_events() -> None:
    schema, named = _envelope()

    def walker(event: Any) -> None:
        _Checker(named, details_record_name(str(event.get("event_type")))).record(schema, event, "")

    def compiled(event: Any) -> None:
        _checker(details_record_name(str(event.get("event_type"))))(event, "")

    rng = random.Random(21)
    events = list(Simulator(Population(300, 21), 21).events(400))
    assert len({e["event_type"] for e in events}) == 14
    refused = 0
    for event in events:
        assert _outcome(compiled, event) == _outcome(walker, event) == "valid"
        for path in rng.sample(_paths(event), min(12, len(_paths(event)))):
            broken = _replaced(event, path, rng.choice(_ODD))
            if path == ("event_type",):
                continue  # validate_event refuses an unknown event type before either walk
            expected = _outcome(walker, broken)
            assert _outcome(compiled, broken) == expected
            refused += expected != "valid"
        extra = {**event, "unexpected": 1}
        assert _outcome(compiled, extra) == _outcome(walker, extra)
        missing = {k: v for k, v in event.items() if k != rng.choice(sorted(event))}
        assert _outcome(compiled, missing) == _outcome(walker, missing)
    assert refused > 100


@pytest.mark.parametrize("details", ["uk.sgb.NoSuchRecord"])
def test_an_event_type_with_no_details_record_is_refused_the_same_way(details: str) -> None:
    schema, named = _envelope()
    event = next(iter(Simulator(Population(10, 3), 3).events(1)))
    assert _outcome(lambda e: _checker(details)(e, ""), event) == _outcome(
        lambda e: _Checker(named, details).record(schema, e, ""), event
    )
