"""A recipient's copy written from the bytes the event arrived in (issue 21, item 2).

An Avro record is its fields' encodings in order, so a copy that keeps most of the event
can be written as the ingress bytes of the fields it keeps, unchanged, with only the fields
redaction removed or transformed written anew. Which fields are unchanged needs no
knowledge of the policy: redaction copies a record and replaces what it changes, so a
field of the copy that is the very object decoded from the ingress bytes encodes to the
bytes it was decoded from. Anything else is written by fastavro, one field at a time.

The splicer only reads the ingress bytes (skipping through them by the writer schema);
anything it cannot follow raises :class:`CannotSplice`, and the caller writes the whole
copy instead (fail closed: never a byte the copy does not hold).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import fastavro

#: The ingress bytes as the splicer reads them (a view: slicing copies nothing).
Buffer = bytes | memoryview
Skip = Callable[[Buffer, int], int]


class CannotSplice(Exception):
    """The copy cannot be written from the ingress bytes; write it whole instead."""


def _varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Avro's zig-zag long at ``pos``: (value, position after it)."""
    byte = buf[pos]
    pos += 1
    raw = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        shift += 7
    return (raw >> 1) ^ -(raw & 1), pos


def _negative() -> int:
    raise CannotSplice


def _skip_varint(buf: Buffer, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1


def _skip_sized(buf: Buffer, pos: int) -> int:
    size = buf[pos]
    if size < 0x80:  # a string shorter than 64 bytes
        return pos + 1 + (size >> 1) if not size & 1 else _negative()
    size, pos = _varint(buf, pos)
    if size < 0:
        raise CannotSplice
    return pos + size


def _skip_none(buf: Buffer, pos: int) -> int:
    return pos


def _skip_nullable_string(buf: Buffer, pos: int) -> int:
    """["null", "string"], the commonest field: a null, or a short string, read inline."""
    index = buf[pos]
    if index == 0:
        return pos + 1
    if index == 2:
        size = buf[pos + 1]
        if size < 0x80 and not size & 1:
            return pos + 2 + (size >> 1)
        return _skip_sized(buf, pos + 1)
    raise CannotSplice


def _union_skip(schema: list[Any], branches: tuple[Skip, ...]) -> Skip:
    if schema == ["null", "string"]:
        return _skip_nullable_string
    if len(branches) == 2 and schema[0] == "null":
        value = branches[1]

        def skip_nullable(buf: Buffer, pos: int) -> int:
            index = buf[pos]
            if index == 0:
                return pos + 1
            if index == 2:
                return value(buf, pos + 1)
            raise CannotSplice

        return skip_nullable

    def skip_union(buf: Buffer, pos: int) -> int:
        index, pos = _varint(buf, pos)
        return branches[index](buf, pos)

    return skip_union


def _fixed(size: int) -> Skip:
    return lambda buf, pos: pos + size


def _blocks(item: Skip, *, keyed: bool) -> Skip:
    def skip(buf: Buffer, pos: int) -> int:
        while True:
            count, pos = _varint(buf, pos)
            if count == 0:
                return pos
            if count < 0:  # a block that says its size in bytes
                size, pos = _varint(buf, pos)
                pos += size
                continue
            for _ in range(count):
                if keyed:
                    pos = _skip_sized(buf, pos)
                pos = item(buf, pos)

    return skip


_PRIMITIVE_SKIPS: dict[str, Skip] = {
    "null": _skip_none,
    "boolean": _fixed(1),
    "int": _skip_varint,
    "long": _skip_varint,
    "float": _fixed(4),
    "double": _fixed(8),
    "string": _skip_sized,
    "bytes": _skip_sized,
}


class _Field:
    """One field of a record: how to skip it, and how to write a new value for it."""

    __slots__ = ("_empty", "_null", "_schema", "_string", "_writer", "name", "node", "skip")

    def __init__(self, name: str, node: _Node, schema: Any) -> None:
        self.name = name
        self.node = node
        self.skip = node.skip
        self._schema = schema
        self._writer: Any = None
        # The values redaction writes most (withheld: null, [] or {}; a masked string) need no
        # fastavro call: their bytes are the union's branch index and an empty block or a string.
        branches = schema if isinstance(schema, list) else [schema]
        kinds = [b if isinstance(b, str) else b.get("type") for b in branches]

        def prefix(kind: str) -> bytes:
            return _long_bytes(kinds.index(kind)) if isinstance(schema, list) else b""

        self._null = prefix("null") if "null" in kinds else None
        self._string = prefix("string") if "string" in kinds else None
        self._empty: dict[type, bytes | None] = {
            list: prefix("array") + b"\x00" if "array" in kinds else None,
            dict: prefix("map") + b"\x00" if "map" in kinds else None,
        }

    def write(self, value: Any, out: io.BytesIO) -> None:
        """The field's encoding of ``value`` (a record of this field alone encodes to exactly that)."""
        if value is None and self._null is not None:
            out.write(self._null)
            return
        if type(value) is str and self._string is not None:
            data = value.encode()
            out.write(self._string)
            out.write(_long_bytes(len(data)))
            out.write(data)
            return
        if not value and type(value) in (list, dict):
            empty = self._empty[type(value)]
            if empty is not None:
                out.write(empty)
                return
        if self._writer is None:
            self._writer = fastavro.parse_schema(
                {
                    "type": "record",
                    "name": "SplicedField",
                    "fields": [{"name": self.name, "type": self._schema}],
                }
            )
        fastavro.schemaless_writer(out, self._writer, {self.name: value})


class _Node:
    """A compiled schema node: its skip function, and its parts for descending into it."""

    __slots__ = ("branches", "fields", "items", "kind", "skip")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "record", "union", "array" or "leaf"
        self.skip: Skip = _skip_none
        self.fields: tuple[_Field, ...] = ()
        self.branches: tuple[_Node, ...] = ()
        self.items: _Node | None = None


class _Compiler:
    """Compiles an inlined schema (named types defined at first use, referred to by name after)."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.definitions: dict[str, Any] = {}

    def node(self, schema: Any, namespace: str = "") -> _Node:
        if isinstance(schema, str):
            if schema in _PRIMITIVE_SKIPS:
                leaf = _Node("leaf")
                leaf.skip = _PRIMITIVE_SKIPS[schema]
                return leaf
            return self.nodes[self._name(schema, namespace)]
        if isinstance(schema, list):
            union = _Node("union")
            union.branches = tuple(self.node(branch, namespace) for branch in schema)
            union.skip = _union_skip(schema, tuple(b.skip for b in union.branches))
            return union
        kind = schema["type"]
        if kind in ("record", "error"):
            return self._record(schema, namespace)
        if kind == "enum":
            leaf = self._named(schema, namespace, "leaf")
            leaf.skip = _skip_varint
            return leaf
        if kind == "fixed":
            leaf = self._named(schema, namespace, "leaf")
            leaf.skip = _fixed(int(schema["size"]))
            return leaf
        if kind in ("array", "map"):
            node = _Node("array" if kind == "array" else "leaf")
            node.items = self.node(schema["items" if kind == "array" else "values"], namespace)
            node.skip = _blocks(node.items.skip, keyed=kind == "map")
            return node
        return self.node(kind, namespace)  # a primitive written as {"type": "string", ...}

    def _name(self, name: str, namespace: str) -> str:
        if "." in name or not namespace:
            return name
        return f"{namespace}.{name}"

    def _named(self, schema: dict[str, Any], namespace: str, kind: str) -> _Node:
        full = self._name(schema["name"], schema.get("namespace", namespace))
        node = _Node(kind)
        self.nodes[full] = node
        self.nodes.setdefault(schema["name"], node)
        self.definitions[full] = schema
        self.definitions.setdefault(schema["name"], schema)
        return node

    def _record(self, schema: dict[str, Any], namespace: str) -> _Node:
        node = self._named(schema, namespace, "record")
        inner = schema.get("namespace", namespace)
        node.fields = tuple(
            _Field(f["name"], self.node(f["type"], inner), self.standalone(f["type"], inner, set()))
            for f in schema["fields"]
        )
        skips = tuple(f.skip for f in node.fields)

        def skip_record(buf: Buffer, pos: int) -> int:
            for skip in skips:
                pos = skip(buf, pos)
            return pos

        node.skip = skip_record
        return node

    def standalone(self, schema: Any, namespace: str, seen: set[str]) -> Any:
        """``schema`` with every named type it refers to defined in it (once), for fastavro."""
        if isinstance(schema, str):
            if schema in _PRIMITIVE_SKIPS:
                return schema
            full = self._name(schema, namespace)
            if full in seen:
                return full
            definition = self.definitions.get(full) or self.definitions[schema]
            return self.standalone(definition, namespace, seen)
        if isinstance(schema, list):
            return [self.standalone(branch, namespace, seen) for branch in schema]
        out = dict(schema)
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            inner = schema.get("namespace", namespace)
            full = self._name(schema["name"], inner)
            seen.add(full)
            out.pop("namespace", None)
            out["name"] = full
            if kind in ("record", "error"):
                out["fields"] = [
                    {**f, "type": self.standalone(f["type"], inner, seen)} for f in schema["fields"]
                ]
        elif kind == "array":
            out["items"] = self.standalone(schema["items"], namespace, seen)
        elif kind == "map":
            out["values"] = self.standalone(schema["values"], namespace, seen)
        return out


class Splicer:
    """Writes records of one schema from the bytes a record of that schema was decoded from.

    Args:
        schema: the record's writer schema, with named types inlined at first use.
        namespace: the namespace its names are in.
    """

    __slots__ = ("_root",)

    def __init__(self, schema: dict[str, Any], namespace: str = "") -> None:
        self._root = _Compiler().node(schema, namespace)

    def write(self, copy: dict[str, Any], decoded: dict[str, Any], body: Buffer, out: io.BytesIO) -> None:
        """Write ``copy`` to ``out``, given ``decoded``, the record exactly as decoded from
        ``body`` (unframed Avro); raises :class:`CannotSplice`, or fastavro's error for a value
        of the copy that does not match the schema."""
        try:
            end = _record(self._root, copy, decoded, body, 0, out)
        except (IndexError, KeyError, TypeError) as exc:
            raise CannotSplice from exc
        if end != len(body):
            raise CannotSplice


def _record(node: _Node, copy: Any, decoded: Any, body: Buffer, pos: int, out: io.BytesIO) -> int:
    """Write the record ``copy`` at ``body[pos:]``, whose decoding is ``decoded``; the end of it."""
    if not isinstance(copy, dict) or not isinstance(decoded, dict):
        raise CannotSplice
    kept = pos  # start of the run of unchanged fields not yet written
    for field in node.fields:
        if field.name not in copy:  # the whole-record writer would use the field's default
            raise CannotSplice
        new, old = copy[field.name], decoded.get(field.name)
        if new is old:
            pos = field.skip(body, pos)
            continue
        if kept < pos:
            out.write(body[kept:pos])
        pos = _changed(field, new, old, body, pos, out)
        kept = pos
    if kept < pos:
        out.write(body[kept:pos])
    return pos


def _changed(field: _Field, new: Any, old: Any, body: Buffer, pos: int, out: io.BytesIO) -> int:
    """Write a field whose value is not the decoded object: descend where both are records (or
    lists of as many records), else write the new value whole. The end of the old value."""
    node = field.node
    if isinstance(new, dict) and isinstance(old, dict):
        if node.kind == "record":
            return _record(node, new, old, body, pos, out)
        if node.kind == "union":
            start = pos
            index, pos = _varint(body, pos)
            branch = node.branches[index]
            if branch.kind == "record":
                out.write(body[start:pos])
                return _record(branch, new, old, body, pos, out)
    elif (
        node.kind == "array"
        and isinstance(new, list)
        and isinstance(old, list)
        and new
        and len(new) == len(old)
        and node.items is not None
        and node.items.kind == "record"
    ):
        return _array(node.items, new, old, body, pos, out)
    end = field.skip(body, pos)
    field.write(new, out)
    return end


def _array(items: _Node, new: list[Any], old: list[Any], body: Buffer, pos: int, out: io.BytesIO) -> int:
    """An array of records written as one block, each item spliced from its old bytes."""
    written = io.BytesIO()
    index = 0
    while True:
        count, pos = _varint(body, pos)
        if count == 0:
            break
        if count < 0:
            _, pos = _varint(body, pos)
            count = -count
        for _ in range(count):
            pos = _record(items, new[index], old[index], body, pos, written)
            index += 1
    if index != len(new):
        raise CannotSplice
    out.write(_long_bytes(len(new)))
    out.write(written.getvalue())
    out.write(b"\x00")
    return pos


def _long_bytes(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number & ~0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)
