"""The one validation of a SafeguardingEvent, before anything is decided about it (POLICY.md
principle 8): the Avro schema (types, enum symbols, required fields, the details record the
event type selects) and the identifier rules (NHS number check digit, UPN check letter, ODS,
URN and local-authority code formats).

The filter calls :func:`validate_event` on every decoded event before deciding; ``sgb policy
evaluate`` calls it on the event read from JSON before answering, so both refuse exactly the
same events with exactly the same sentence. A sentence names the field, never its value.

Pure: events in the Python shape fastavro reads and writes (dates as ``date``, times as
``datetime``, enums as their symbols).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from typing import Any, NoReturn

from schemas import identifiers
from schemas.child_keys import NO_CHILD, child_key
from schemas.exceptions import InvalidEvent, InvalidIdentifier
from schemas.loader import load
from schemas.walker import details_record_name, named_types, resolve

__all__ = ["IDENTIFIER_RULES", "NO_CHILD", "InvalidEvent", "validate_event"]


def _exact(check: Callable[[str], str], what: str, form: str) -> Callable[[str], str]:
    """An identifier check that also insists on the normal form (the child key is built from
    the value as it is, so ``943 476 5919`` and ``9434765919`` must not be two children)."""

    def run(value: str) -> str:
        normal = check(value)
        if normal != value:
            msg = f"{what} must be written {form}"
            raise InvalidIdentifier(msg)
        return normal

    return run


#: Dotted field path -> the identifier rule its value must pass (when it is not null).
IDENTIFIER_RULES: dict[str, Callable[[str], str]] = {
    "child.nhs_number": _exact(identifiers.validate_nhs_number, "NHS number", "as ten digits with no spaces"),
    "child.upn": _exact(identifiers.validate_upn, "UPN", "in upper case with no spaces"),
    "child.la_child_id": _exact(
        identifiers.validate_la_child_id, "Local authority child id", "without surrounding spaces"
    ),
    "child.police_person_reference": _exact(
        identifiers.validate_police_person_reference, "Police person reference", "without surrounding spaces"
    ),
    "child.local_patient_id": _exact(
        identifiers.validate_local_patient_id, "Local patient id", "without surrounding spaces"
    ),
    "child.local_patient_id_issuer": _exact(identifiers.validate_ods_code, "ODS code", "in upper case"),
    "child.school_urn": _exact(identifiers.validate_school_urn, "School URN", "as six digits"),
    "child.gp_practice_ods": _exact(
        identifiers.validate_gp_practice_code, "GP practice code", "as a letter and five digits"
    ),
    "child.local_authority_code": _exact(
        identifiers.validate_la_code, "Local authority code", "as three digits"
    ),
    "details.responsible_local_authority_code": _exact(
        identifiers.validate_la_code, "Local authority code", "as three digits"
    ),
    "details.placement_local_authority_code": _exact(
        identifiers.validate_la_code, "Local authority code", "as three digits"
    ),
}

#: The prefix of a field sealed by per-child field encryption (the ``sgbenc:v1:`` token).
SEALED_PREFIX = "sgbenc:v1:"

_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def validate_event(event: Mapping[str, Any]) -> None:
    """Check ``event`` against the SafeguardingEvent schema and the identifier rules.

    Raises:
        InvalidEvent: one sentence naming the first field that is wrong, never its value.
    """
    _, named = _envelope()
    if not isinstance(event, Mapping):
        msg = "The event must be a record."
        raise InvalidEvent(msg)
    event_type = event.get("event_type")
    symbols = named["uk.sgb.EventType"]["symbols"]
    if event_type not in symbols:
        msg = "Field event_type is missing or not one of the event types."
        raise InvalidEvent(msg)
    _checker(details_record_name(str(event_type)))(event, "")
    child = event["child"]
    for path, rule in IDENTIFIER_RULES.items():
        top, name = path.split(".", 1)
        holder = event.get(top)
        value = holder.get(name) if isinstance(holder, Mapping) else None
        if value is None or (isinstance(value, str) and value.startswith(SEALED_PREFIX)):
            continue  # a sealed field (field encryption) is checked where it was written, in clear
        try:
            rule(value)
        except InvalidIdentifier as exc:
            msg = f"Field {path} is not a valid identifier ({str(exc).rstrip('.')})."
            raise InvalidEvent(msg) from None
    if event.get("merges") and event.get("correction"):
        msg = "Field merges is set on a correction: a merge is evidence of its own, never a correction."
        raise InvalidEvent(msg)
    keyed = [("child.linked_identifiers", v) for v in child.get("linked_identifiers") or ()]
    for n, merge in enumerate(event.get("merges") or ()):
        for name in ("identifiers", "merged_identifiers"):
            if not merge[name]:
                msg = f"Field merges[{n}].{name} is empty: a merge names both records."
                raise InvalidEvent(msg)
            keyed.extend((f"merges[{n}].{name}", v) for v in merge[name])
    for path, linked in keyed:
        try:
            identifiers.validate_linked_identifier(linked)
        except InvalidIdentifier as exc:
            msg = f"Field {path} is not a valid identifier ({str(exc).rstrip('.')})."
            raise InvalidEvent(msg) from None
    if child_key(child) is None:
        raise InvalidEvent(NO_CHILD)


@cache
def _envelope() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = load("SafeguardingEvent")
    return schema, named_types(schema)


#: Checks one value at a path; raises :class:`InvalidEvent` naming the path.
Check = Callable[[Any, str], None]
#: A record's field: name, has a default, must not be null, the type whose values are always
#: valid (or None), the enum's symbols (or None), and the full check.
_FieldCheck = tuple[str, bool, bool, type | None, frozenset[str] | None, Check]

#: Primitive types whose every value of exactly that Python type is valid.
_EXACT: dict[tuple[str, str | None], type] = {
    ("string", None): str,
    ("boolean", None): bool,
    ("bytes", None): bytes,
    ("int", "date"): date,
}


def _plain(holds: Any) -> tuple[type | None, frozenset[str] | None]:
    """For a field's resolved type: the Python type all of whose values are valid, and an
    enum's symbols (a value outside them goes to the full check, which names the fault)."""
    if isinstance(holds, str):
        return _EXACT.get((holds, None)), None
    if isinstance(holds, Mapping):
        if holds.get("type") == "enum":
            return None, frozenset(holds["symbols"])
        return _EXACT.get((str(holds.get("type")), holds.get("logicalType"))), None
    return None, None


@cache
def _checker(details: str) -> Check:
    """The envelope's check with ``details`` as the details branch, compiled once: the schema is
    resolved when compiling, not at every value of every event (issue 21, CPU per event)."""
    schema, named = _envelope()
    return _Compiler(named, details).record(schema)


class _Compiler:
    """Compiles a schema into checks that walk a value along it; the first mismatch raises
    :class:`InvalidEvent`, in the order fields are declared."""

    __slots__ = ("_records", "details", "named")

    def __init__(self, named: Mapping[str, Any], details: str) -> None:
        self.named = named
        self.details = details
        self._records: dict[int, Check] = {}

    def record(self, node: Mapping[str, Any]) -> Check:
        found = self._records.get(id(node))
        if found is not None:
            return found
        fields: list[_FieldCheck] = []

        def check(value: Any, path: str) -> None:
            if not isinstance(value, Mapping):
                _fail(path, "must be a record")
            if not declared.issuperset(value):
                unknown = [k for k in value if k not in declared and k != "-type"]
                if unknown:
                    msg = f"Field {path or '(the event)'} has members the schema does not define: {', '.join(sorted(unknown))}."
                    raise InvalidEvent(msg)
            for name, has_default, required, exact, symbols, sub_check in fields:
                if name not in value:
                    if has_default:
                        continue
                    _fail(f"{path}.{name}" if path else name, "is required")
                item = value[name]
                # The commonest values pass without a call: null where allowed, a value of the
                # one type that can only be valid (text, a date, true or false), an enum symbol.
                if item is None:
                    if not required:
                        continue
                elif type(item) is exact or (symbols is not None and type(item) is str and item in symbols):
                    continue
                sub_check(item, f"{path}.{name}" if path else name)

        self._records[id(node)] = check  # before its fields: a record may hold itself
        declared = frozenset(field["name"] for field in node["fields"])
        for field in node["fields"]:
            holds, nullable = resolve(field["type"], self.named)
            exact, symbols = _plain(holds)
            required = not nullable and holds != "null"
            fields.append(
                (field["name"], "default" in field, required, exact, symbols, self.value(field["type"]))
            )
        return check

    def value(self, type_: Any) -> Check:
        holds, nullable = resolve(type_, self.named)
        inner = self._holds(holds)
        required = not nullable and holds != "null"

        def check(value: Any, path: str) -> None:
            if value is None:
                if required:
                    _fail(path, "must not be null")
                return
            inner(value, path)

        return check

    def _holds(self, holds: Any) -> Check:
        if isinstance(holds, list):  # the details union: the event type selects the branch
            branch = self.named.get(self.details)
            if branch is None or not any(resolve(b, self.named)[0] is branch for b in holds):
                return _failing("has no record for this event type")
            return self.record(branch)
        if isinstance(holds, str):
            return _primitive(holds, None)
        kind = holds.get("type")
        if kind == "record":
            return self.record(holds)
        if kind == "enum":
            return _enum(holds)
        if kind == "array":
            return _array(self.value(holds["items"]))
        if kind == "map":
            return _map(self.value(holds["values"]))
        if kind == "fixed":
            return _fixed(int(holds["size"]))
        return _primitive(str(kind), holds.get("logicalType"))


def _failing(what: str) -> Check:
    def check(value: Any, path: str) -> None:
        _fail(path, what)

    return check


def _enum(holds: Mapping[str, Any]) -> Check:
    symbols = frozenset(holds["symbols"])
    what = f"must be one of the {holds['name']} symbols"

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or value not in symbols:
            _fail(path, what)

    return check


def _array(item: Check) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list):
            _fail(path, "must be a list")
        at = f"{path}[]"
        for each in value:
            item(each, at)

    return check


def _map(item: Check) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            _fail(path, "must be a map with text keys")
        for key, each in value.items():
            item(each, f"{path}.{key}")

    return check


def _fixed(size: int) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, bytes) or len(value) != size:
            _fail(path, f"must be {size} bytes")

    return check


def _instance(kinds: type | tuple[type, ...], what: str) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, kinds):
            _fail(path, what)

    return check


def _primitive(kind: str, logical: str | None) -> Check:
    """The check of one primitive (with its logical type)."""
    if logical == "date" and kind == "int":

        def check_date(value: Any, path: str) -> None:
            if not isinstance(value, date) or isinstance(value, datetime):
                _fail(path, "must be a date")

        return check_date
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":

        def check_time(value: Any, path: str) -> None:
            if not isinstance(value, datetime) or value.tzinfo is None:
                _fail(path, "must be a time with a zone")

        return check_time
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]
        what = "must be a whole number" + (" of 32 bits" if kind == "int" else "")

        def check_int(value: Any, path: str) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                _fail(path, what)

        return check_int
    if kind in ("float", "double"):

        def check_number(value: Any, path: str) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                _fail(path, "must be a number")

        return check_number
    if kind == "boolean":
        return _instance(bool, "must be true or false")
    if kind == "string":
        return _instance(str, "must be text")
    if kind == "bytes":
        return _instance(bytes, "must be bytes")
    if kind == "null":
        return _failing("must be null")
    return _nothing


def _nothing(value: Any, path: str) -> None:
    """A type the walker does not check."""


def _fail(path: str, what: str) -> NoReturn:
    msg = f"Field {path or '(the event)'} {what}."
    raise InvalidEvent(msg)
