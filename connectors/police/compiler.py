"""Compiling a mapping file against the schema into a function from one row to event fields.

The ``SafeguardingEvent`` schema is walked alongside the file's ``event`` section: every
name must be a field of the record it is in, every field the schema requires must be
mapped, and each leaf gets the converter its Avro type needs (dates, times, enums,
booleans, whole numbers, text). Anything wrong is a :class:`MappingFileError` naming the file
and the field, raised before any row is read. The compiled builders are closures, so a row
costs one dictionary lookup and one conversion per mapped field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import schemas
from connectors.exceptions import MappingError
from connectors.police import values as conv
from connectors.police.mapping_file import MappingFile, field_spec, mapping_error
from schemas.jsonform import details_branch
from schemas.walker import named_types

#: (value, whether any of it came from the row rather than from constants)
Built = tuple[Any, bool]
Builder = Callable[[Mapping[str, Any]], Built]

#: Fields the connector sets; a mapping file may not.
SET_BY_CONNECTOR = frozenset(
    {"event_id", "event_type", "withheld_fields", "generalised_fields", "source.agency"}
)

_MISSING = object()


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """A mapping file ready to apply: ``build(row)`` returns the event's mapped fields."""

    event_type: str
    columns: frozenset[str]
    format: str | None
    csv_delimiter: str
    csv_encoding: str
    json_records: str | None
    _root: Builder
    when_column: str | None = None
    when_values: frozenset[str] = frozenset()
    retracted_column: str | None = None
    retracted_values: frozenset[str] = frozenset()

    def applies(self, row: Mapping[str, Any]) -> bool:
        """Whether the mapping's ``when`` condition holds for ``row`` (always, without one)."""
        return self.when_column is None or _matches(row, self.when_column, self.when_values)

    def retracted(self, row: Mapping[str, Any]) -> bool:
        """Whether the mapping's ``retracted_when`` condition holds for ``row`` (never, without one):
        the force withdrew the record (no crime, entered in error)."""
        return self.retracted_column is not None and _matches(
            row, self.retracted_column, self.retracted_values
        )

    def build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The mapped fields of one row; raises :class:`MappingError` naming the column and field."""
        value: dict[str, Any] = self._root(row)[0]
        return value


def _matches(row: Mapping[str, Any], column: str, values: frozenset[str]) -> bool:
    value = _getter(column)(row)
    return value is not None and str(value).strip().casefold() in values


def _getter(column: str) -> Callable[[Mapping[str, Any]], Any]:
    if "." not in column:
        return lambda row: row.get(column)
    parts = column.split(".")

    def get(row: Mapping[str, Any]) -> Any:
        found = row.get(column, _MISSING)
        if found is not _MISSING:
            return found
        node: Any = row
        for part in parts:
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node

    return get


def _default_builder(default: Any) -> Builder:
    """An unmapped optional field: its schema default (a fresh list or map each time)."""
    if isinstance(default, list):
        return lambda row: ([], False)
    if isinstance(default, dict):
        return lambda row: ({}, False)
    return lambda row: (default, False)


class _Compiler:
    def __init__(self, spec: MappingFile, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.zone = ZoneInfo(spec.timezone)
        self.columns: set[str] = set()
        self.schema = schemas.load("SafeguardingEvent")
        self.named = named_types(self.schema)

    def fail(self, field: str, problem: str) -> Exception:
        return mapping_error(self.path, field, problem)

    def resolve(self, node: Any) -> Any:
        return self.named.get(node, node) if isinstance(node, str) else node

    # -- records ---------------------------------------------------------------------------
    def record(self, schema: dict[str, Any], spec: Any, path: str, mode: str) -> Builder:
        """mode: ``required`` (always built), ``nullable`` (None when every value is None) or
        ``item`` (None when no value came from the row: a list entry with nothing in it)."""
        if not isinstance(spec, dict) or "column" in spec or "const" in spec:
            raise self.fail(path, f"must be a section of {schema['name']} fields, not a single value")
        fields = {f["name"]: f for f in schema["fields"]}
        unknown = sorted(set(spec) - set(fields))
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}", f"is not a field of {schema['name']}")
        parts: list[tuple[str, Builder]] = []
        required: list[tuple[str, str]] = []
        for name, field in fields.items():
            sub = f"{path}.{name}"
            if sub.removeprefix("event.") in SET_BY_CONNECTOR:
                if name in spec:
                    raise self.fail(sub, "is set by the connector and cannot be mapped")
                continue
            if name not in spec:
                if "default" not in field:
                    raise self.fail(sub, "is required by the schema but not mapped")
                parts.append((name, _default_builder(field["default"])))
                continue
            builder, wanted = self.field(field, spec[name], sub)
            parts.append((name, builder))
            if wanted:
                required.append((name, self._describe(spec[name], sub)))
        return self._record_builder(parts, required, mode)

    @staticmethod
    def _record_builder(
        parts: list[tuple[str, Builder]], required: list[tuple[str, str]], mode: str
    ) -> Builder:
        def build(row: Mapping[str, Any]) -> Built:
            out: dict[str, Any] = {}
            from_row = False
            for name, builder in parts:
                value, data = builder(row)
                out[name] = value
                from_row = from_row or data
            if mode == "item" and not from_row:
                return None, False
            if mode == "nullable" and all(v is None or v == [] for v in out.values()):
                return None, False
            for name, where in required:
                if out[name] is None:
                    msg = f"{where} is empty, and the field is required."
                    raise MappingError(msg)
            return out, from_row

        return build

    def _describe(self, raw: Any, path: str) -> str:
        column = raw.get("column") if isinstance(raw, dict) else None
        short = path.removeprefix("event.")
        return f"Column {column!r} ({short})" if column else short

    # -- fields ----------------------------------------------------------------------------
    def field(self, field: dict[str, Any], raw: Any, path: str) -> tuple[Builder, bool]:
        """A builder for one field, and whether the field must have a value."""
        kind: Any = field["type"]
        nullable = isinstance(kind, list) and "null" in kind
        if path == "event.details":
            return self.record(self._details_schema(kind), raw, path, "required"), False
        if isinstance(kind, list):
            branches = [b for b in kind if b != "null"]
            if len(branches) != 1:
                raise self.fail(path, "is a union the mapping file cannot fill")
            kind = branches[0]
        kind = self.resolve(kind)
        if isinstance(kind, dict) and kind.get("type") == "record":
            return self.record(kind, raw, path, "nullable" if nullable else "required"), False
        if isinstance(kind, dict) and kind.get("type") == "array":
            return self.array(self.resolve(kind["items"]), raw, path), False
        if isinstance(kind, dict) and kind.get("type") == "map":
            raise self.fail(path, "is a map field the mapping file cannot fill")
        try:
            spec = field_spec(raw)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if spec.split is not None:
            raise self.fail(path, "'split' is only for list fields")
        builder = self.leaf(kind, spec, path)
        return builder, (not nullable and "default" not in field) or bool(spec.required)

    def _details_schema(self, union: Any) -> dict[str, Any]:
        wanted = details_branch(self.spec.event_type)
        for branch in union:
            resolved = self.resolve(branch)
            if isinstance(resolved, dict) and resolved.get("name", "").rsplit(".", 1)[-1] == wanted:
                return resolved
        raise self.fail("event_type", f"has no details record {wanted} in the schema")

    def array(self, items: Any, raw: Any, path: str) -> Builder:
        if isinstance(items, dict) and items.get("type") == "record":
            if not isinstance(raw, list):
                raise self.fail(path, f"must be a list of {items['name']} sections")
            entries = [self.record(items, entry, f"{path}[{i}]", "item") for i, entry in enumerate(raw)]

            def build_records(row: Mapping[str, Any]) -> Built:
                out = [value for value, _ in (entry(row) for entry in entries) if value is not None]
                return out, bool(out)

            return build_records
        if isinstance(raw, list):
            leaves = []
            for i, entry in enumerate(raw):
                try:
                    leaves.append(self.leaf(items, field_spec(entry), f"{path}[{i}]"))
                except ValueError as exc:
                    raise self.fail(f"{path}[{i}]", str(exc)) from None

            def build_list(row: Mapping[str, Any]) -> Built:
                out, from_row = [], False
                for leaf in leaves:
                    value, data = leaf(row)
                    if value is not None:
                        out.append(value)
                        from_row = from_row or data
                return out, from_row

            return build_list
        try:
            spec = field_spec(raw)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if spec.column is None:
            constant = self.leaf(items, spec, path)({})[0]
            return lambda row: (([constant] if constant is not None else []), False)
        self.columns.add(spec.column)
        convert = self.converter(items, spec, path, self._describe({"column": spec.column}, path))
        get = _getter(spec.column)
        separator = spec.split

        def build_split(row: Mapping[str, Any]) -> Built:
            raw_value = get(row)
            if isinstance(raw_value, list):
                parts = raw_value
            else:
                text = conv.text(raw_value)
                if text is None:
                    return [], False
                parts = text.split(separator) if separator else [text]
            out = [value for value in (convert(part) for part in parts) if value is not None]
            return out, bool(out)

        return build_split

    def leaf(self, kind: Any, spec: Any, path: str, where: str | None = None) -> Builder:
        """A builder for one scalar value of Avro type ``kind``."""
        where = where or self._describe({"column": spec.column}, path)
        convert = self.converter(kind, spec, path, where)
        if spec.column is None:
            try:
                constant = convert(spec.const)
            except MappingError as exc:
                raise self.fail(path, f"the constant does not fit: {exc}") from None
            return lambda row: (constant, False)
        self.columns.add(spec.column)
        default = None
        if spec.default is not None:
            try:
                default = convert(spec.default)
            except MappingError as exc:
                raise self.fail(f"{path}.default", str(exc)) from None
        column = spec.column
        if "." in column:
            get = _getter(column)

            def build_nested(row: Mapping[str, Any]) -> Built:
                value = convert(get(row))
                return (default, False) if value is None else (value, True)

            return build_nested
        if kind == "string" and spec.values is None:
            text = conv.text

            def build_text(row: Mapping[str, Any]) -> Built:
                # The commonest leaf, kept to one call: plain text from a column.
                value = row.get(column)
                value = value.strip() if value.__class__ is str else text(value)
                return (value, True) if value else (default, False)

            return build_text

        def build(row: Mapping[str, Any]) -> Built:
            value = convert(row.get(column))
            return (default, False) if value is None else (value, True)

        return build

    def converter(self, kind: Any, spec: Any, path: str, where: str) -> conv.Convert:
        logical = kind.get("logicalType") if isinstance(kind, dict) else None
        base = kind.get("type") if isinstance(kind, dict) else kind
        if spec.format is not None and logical not in ("date", "timestamp-millis", "timestamp-micros"):
            raise self.fail(path, "'format' is only for dates and times")
        if spec.values is not None and base not in ("enum", "boolean", "string"):
            raise self.fail(path, "'values' is only for enumerations, yes/no fields and text")
        if logical == "date":
            return conv.date_converter(where, spec.format or "iso")
        if logical in ("timestamp-millis", "timestamp-micros"):
            return conv.timestamp_converter(where, spec.format or "iso", self.zone)
        if base == "enum":
            symbols = tuple(kind["symbols"])
            for mapped in (spec.values or {}).values():
                if mapped is not None and mapped not in symbols:
                    raise self.fail(
                        f"{path}.values", f"maps to something that is not one of {', '.join(symbols)}"
                    )
            return conv.enum_converter(where, symbols, spec.values)
        if base == "boolean":
            if spec.values is not None and not all(isinstance(v, bool) for v in spec.values.values()):
                raise self.fail(f"{path}.values", "must map each exported value to true or false")
            return conv.boolean_converter(where, spec.values)
        if base in ("int", "long"):
            return conv.int_converter(where)
        if base == "string":
            return conv.string_converter(where, spec.values)
        raise self.fail(path, f"has type {base}, which a mapping file cannot fill")


def compile_mapping(spec: MappingFile, path: Path) -> CompiledMapping:
    """Check ``spec`` against the schema and compile it; raises :class:`MappingFileError`."""
    compiler = _Compiler(spec, path)
    root = compiler.record(compiler.schema, spec.event, "event", "required")
    when, retracted = spec.when, spec.retracted_when
    for condition in (when, retracted):
        if condition is not None:
            compiler.columns.add(condition.column)
    return CompiledMapping(
        spec.event_type,
        frozenset(compiler.columns),
        spec.format,
        spec.csv.delimiter,
        spec.csv.encoding,
        spec.json_options.records,
        root,
        when.column if when else None,
        when.wanted() if when else frozenset(),
        retracted.column if retracted else None,
        retracted.wanted() if retracted else frozenset(),
    )
