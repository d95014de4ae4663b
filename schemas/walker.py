"""The one walker over the Avro schemas, and the tag plan it computes.

Everything that reads the schemas' structure goes through here: redaction and field
encryption (which fields carry which effective tags), the police mapping compiler and JSON
forms (what type a field has), governance and compatibility (named types).

- :func:`named_types` indexes a schema's named types (records, enums, fixed) by short and
  full name, so a reference by name resolves.
- :func:`resolve` turns a field's type into the type it holds: a named reference resolved,
  a nullable union reduced to its other branch (and whether it was nullable).
- :func:`tag_plan` computes, once per schema and details record, the tree of every field with
  its *effective* tags: a field's own ``confluent:tags`` plus those of every field above it,
  so ``child.confidential_address.line1`` carries CONFIDENTIAL_ADDRESS and CONTACT.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

NAMESPACE = "uk.sgb"
NAMED_KINDS = ("record", "enum", "fixed")


def named_types(schema: Any, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type defined inside ``schema``, by short name and by full name."""
    named: dict[str, Any] = {} if out is None else out
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in NAMED_KINDS and "name" in node:
                named[node["name"]] = node
                named[f"{node.get('namespace', NAMESPACE)}.{node['name']}"] = node
                stack.extend(field["type"] for field in node.get("fields", ()))
            elif kind == "array":
                stack.append(node["items"])
            elif kind == "map":
                stack.append(node["values"])
            elif isinstance(kind, (dict, list)):
                stack.append(kind)
    return named


def resolve(type_: Any, named: Mapping[str, Any]) -> tuple[Any, bool]:
    """The type a field holds and whether it is nullable.

    A union with ``null`` and one other branch becomes that branch; a union of several
    branches (the event's ``details``) stays a list; a name becomes its definition.
    """
    nullable = False
    if isinstance(type_, list):
        branches = [b for b in type_ if b != "null"]
        nullable = len(branches) < len(type_)
        type_ = branches[0] if len(branches) == 1 else branches
    if isinstance(type_, str) and type_ in named:
        type_ = named[type_]
    return type_, nullable


def own_tags(node: Mapping[str, Any]) -> frozenset[str]:
    """A field's own sensitivity tags (``confluent:tags``)."""
    return frozenset(node.get("confluent:tags", ()))


def details_record_name(event_type: str) -> str:
    """The full name of the details record of an event type (DOMESTIC_ABUSE_INCIDENT -> ...DomesticAbuseIncident)."""
    return NAMESPACE + "." + "".join(part.capitalize() for part in event_type.split("_"))


@dataclass(frozen=True, slots=True)
class FieldNode:
    """One field of the tag plan.

    Attributes:
        name: the field's name.
        path: dotted from the top record; inside an array of records the items' fields follow
            ``[].`` (``related_people[].name``).
        kind: ``required``, ``nullable``, ``array`` or ``map``.
        tags: the effective tags (own and inherited).
        own_tags: the field's own tags.
        holds: the resolved type it holds (an array's or map's items for those kinds).
        children: the fields of the record it holds (or of its items, or of the details
            record); None for a leaf.
        declared_fields: how many fields that record declares (0 for a leaf).
        attributes: the field's other ``sgb:`` attributes (``sgb:mask``).
    """

    name: str
    path: str
    kind: str
    tags: frozenset[str]
    own_tags: frozenset[str]
    holds: Any
    children: tuple[FieldNode, ...] | None
    declared_fields: int
    attributes: Mapping[str, Any]

    def walk(self) -> Iterator[FieldNode]:
        """This field and every field below it, depth first."""
        yield self
        for child in self.children or ():
            yield from child.walk()


class _Builder:
    __slots__ = ("details", "named")

    def __init__(self, named: Mapping[str, Any], details: str | None) -> None:
        self.named = named
        self.details = details

    def record(
        self, record: Mapping[str, Any], inherited: frozenset[str], prefix: str
    ) -> tuple[FieldNode, ...]:
        return tuple(self.field(field, inherited, prefix) for field in record["fields"])

    def field(self, field: Mapping[str, Any], inherited: frozenset[str], prefix: str) -> FieldNode:
        own = own_tags(field)
        tags = inherited | own
        path = f"{prefix}{field['name']}"
        holds, nullable = resolve(field["type"], self.named)
        kind = "nullable" if nullable else "required"
        record: Mapping[str, Any] | None = None
        if isinstance(holds, dict) and holds.get("type") == "array":
            kind = "array"
            holds, _ = resolve(holds["items"], self.named)
            if isinstance(holds, dict) and holds.get("type") == "record":
                record = holds
        elif isinstance(holds, dict) and holds.get("type") == "map":
            kind = "map"
            holds, _ = resolve(holds["values"], self.named)
        elif isinstance(holds, dict) and holds.get("type") == "record":
            record = holds
        elif isinstance(holds, list):
            # A union of records, the event's details: the branch named for this plan. With no
            # such branch the field stays a union with no children (callers decide what that means).
            record = self.named.get(self.details) if self.details else None
            if record is not None:
                holds = record
        children = None
        if record is not None:
            children = self.record(record, tags, path + ("[]." if kind == "array" else "."))
        attributes = {k: v for k, v in field.items() if k.startswith("sgb:")}
        return FieldNode(
            field["name"],
            path,
            kind,
            tags,
            own,
            holds,
            children,
            len(record["fields"]) if record is not None else 0,
            attributes,
        )


def tag_plan(schema: Mapping[str, Any], details_record: str | None = None) -> tuple[FieldNode, ...]:
    """The fields of a top-level record with their effective tags.

    Args:
        schema: the record, named types inlined (:func:`schemas.load`).
        details_record: the full name of the branch the ``details`` union takes, for an event.
    """
    return _cached_plan(_Frozen(schema), details_record)


class _Frozen:
    """A schema made hashable by identity, so plans are compiled once per loaded schema."""

    __slots__ = ("schema",)

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema

    def __hash__(self) -> int:
        return id(self.schema)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and other.schema is self.schema


@lru_cache(maxsize=256)
def _cached_plan(frozen: _Frozen, details_record: str | None) -> tuple[FieldNode, ...]:
    schema = frozen.schema
    return _Builder(named_types(schema), details_record).record(schema, frozenset(), "")
