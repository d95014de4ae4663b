"""Governance of the catalogue: every schema parses, every leaf field is documented and
tagged with known tags, a field the policy may withhold can be withheld (it is nullable,
an array or a map), and every change is compatible both ways with each released version
kept in ``schemas/released/`` (full-transitive): the new schema reads old data, and
hubs still on an old version read new data, so removing a required field is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro

from schemas.compatibility import incompatibilities
from schemas.exceptions import SchemaError
from schemas.loader import SCHEMA_DIR, load, load_all_names

KNOWN_TAGS = frozenset(
    {
        "METADATA",
        "IDENTIFIER",
        "NAME",
        "DATE_OF_BIRTH",
        "CONTACT",
        "CONFIDENTIAL_ADDRESS",
        "HEALTH",
        "MENTAL_HEALTH",
        "SEXUAL_HEALTH",
        "CRIMINAL_OFFENCE",
        "THIRD_PARTY",
        "SPECIAL_CATEGORY",
        "NARRATIVE",
        "CASE_DETAIL",
    }
)
#: The records that travel on topics (each registered as its own subject).
TOP_LEVEL = (
    "SafeguardingEvent",
    "ConsentRecord",
    "ChildStatus",
    "AuditRecord",
    "AuditDecision",
    "DeadLetter",
    "IdentityLink",
    "ShareRecord",
)
RELEASED_DIR = SCHEMA_DIR.parent / "released"


def _fail(msg: str) -> None:
    raise SchemaError(msg)


def _walk(
    node: Any,
    named: dict[str, Any],
    inherited: frozenset[str],
    path: str,
    where: str,
    done: set[tuple[str, frozenset[str]]],
) -> None:
    """Check one type; ``path`` names the field for messages."""
    if isinstance(node, str):
        if node in named:
            _walk(named[node], named, inherited, path, where, done)
        elif not inherited - {"METADATA"} and not inherited:
            _fail(f"{where}: field {path} has no sensitivity tags (add confluent:tags).")
        return
    if isinstance(node, list):
        for branch in node:
            if branch != "null":
                _walk(branch, named, inherited, path, where, done)
        return
    kind = node.get("type")
    if kind == "record":
        key = (node["name"], inherited)
        if key in done:
            return
        done.add(key)
        named[node["name"]] = node
        named[f"{node.get('namespace', 'uk.sgb')}.{node['name']}"] = node
        if not str(node.get("doc", "")).strip():
            _fail(f"{where}: record {node['name']} has no doc.")
        for field in node["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            if not str(field.get("doc", "")).strip():
                _fail(f"{where}: field {sub} has no doc.")
            tags = field.get("confluent:tags", [])
            if not isinstance(tags, list):
                _fail(f"{where}: field {sub} has confluent:tags that is not a list.")
            unknown = [t for t in tags if t not in KNOWN_TAGS]
            if unknown:
                _fail(
                    f"{where}: field {sub} has unknown tag {unknown[0]} (known: {', '.join(sorted(KNOWN_TAGS))})."
                )
            effective = inherited | frozenset(tags)
            _removable(field, sub, where, effective, inherited, named)
            _walk(field["type"], named, effective, sub, where, done)
        return
    if kind == "enum":
        named[node["name"]] = node
        named[f"{node.get('namespace', 'uk.sgb')}.{node['name']}"] = node
        if not inherited:
            _fail(f"{where}: field {path} has no sensitivity tags (add confluent:tags).")
        return
    if kind == "array":
        _walk(node["items"], named, inherited, f"{path}[]", where, done)
        return
    if kind == "map":
        _walk(node["values"], named, inherited, f"{path}{{}}", where, done)
        return
    if isinstance(kind, (dict, list)):
        _walk(kind, named, inherited, path, where, done)
        return
    if not inherited:
        _fail(f"{where}: field {path} has no sensitivity tags (add confluent:tags).")


def _removable(
    field: dict[str, Any],
    path: str,
    where: str,
    effective: frozenset[str],
    inherited: frozenset[str],
    named: dict[str, Any],
) -> None:
    """A field that adds a tag beyond METADATA must be withholdable on its own."""
    adds = frozenset(field.get("confluent:tags", [])) - inherited - {"METADATA"}
    if not adds:
        return
    type_ = field["type"]
    if isinstance(type_, list) and "null" in type_:
        return
    if isinstance(type_, dict) and type_.get("type") in ("array", "map"):
        return
    _fail(
        f"{where}: field {path} carries {', '.join(sorted(adds))} but cannot be withheld "
        "(make it nullable with default null, or an array or map)."
    )


def check_schema(name: str, directory: Path | None = None) -> None:
    """Check one top-level schema; raises :class:`SchemaError` with one sentence."""
    schema = load(name, directory)
    try:
        fastavro.parse_schema(schema)
    except Exception as exc:
        _fail(f"{name}: not valid Avro ({exc}).")
    _walk(schema, {}, frozenset(), "", name, set())


def released_versions(name: str, released_dir: Path = RELEASED_DIR) -> list[Path]:
    """The released copies of a top-level schema, oldest first."""
    return sorted(released_dir.glob(f"*/{name}.avsc"), key=lambda p: _version_key(p.parent.name))


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in text.lstrip("v").split("."))


def check_catalogue(directory: Path | None = None, released_dir: Path = RELEASED_DIR) -> str:
    """Check the whole catalogue; returns a one-line summary or raises :class:`SchemaError`."""
    import json

    directory = directory or SCHEMA_DIR
    names = load_all_names(directory)
    for name in names:  # every file parses on its own (references resolved)
        try:
            fastavro.parse_schema(load(name, directory))
        except SchemaError:
            raise
        except Exception as exc:
            _fail(f"{name}.avsc: not valid Avro ({exc}).")
    compared = 0
    for name in TOP_LEVEL:
        check_schema(name, directory)
        current = load(name, directory)
        for path in released_versions(name, released_dir):
            old = json.loads(path.read_text(encoding="utf-8"))
            problems = incompatibilities(reader=current, writer=old)
            if problems:
                _fail(
                    f"{name} is not backward compatible with released version {path.parent.name} "
                    f"(the new schema cannot read old data): {problems[0]}."
                )
            problems = incompatibilities(reader=old, writer=current)
            if problems:
                _fail(
                    f"{name} is not forward compatible with released version {path.parent.name} "
                    f"(readers still on it cannot read new data): {problems[0]}."
                )
            compared += 1
    return (
        f"{len(names)} schema files, {len(TOP_LEVEL)} top-level records: all parse, every leaf field is "
        f"documented and tagged, and {compared} released version(s) stay compatible both ways."
    )
