"""The schema catalogue: every schema loads, every leaf is tagged and documented, samples round-trip.

The redaction engine works from the tags alone, so a leaf without a tag, or with a tag outside
POLICY.md's list, would be a field nobody decided about. The walk follows records, arrays,
maps and unions, and a leaf's effective tags are the union of the tags along its path.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest

import schemas

TAGS = frozenset({
    "METADATA", "IDENTIFIER", "NAME", "DATE_OF_BIRTH", "CONTACT", "CONFIDENTIAL_ADDRESS", "HEALTH",
    "MENTAL_HEALTH", "SEXUAL_HEALTH", "CRIMINAL_OFFENCE", "THIRD_PARTY", "SPECIAL_CATEGORY",
    "NARRATIVE", "CASE_DETAIL",
})  # fmt: skip
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
CHILD_IDENTITY = frozenset({
    "nhs_number", "upn", "la_child_id", "police_person_reference", "given_name", "family_name",
    "date_of_birth", "ethnicity",
})  # fmt: skip

ALL_NAMES = schemas.load_all_names()
ENVELOPE = schemas.load("SafeguardingEvent")
EVENT_TYPES: list[str] = schemas.load("EventType")["symbols"]
DETAILS = ["".join(part.title() for part in symbol.split("_")) for symbol in EVENT_TYPES]
RECORDS = [name for name in ALL_NAMES if schemas.load(name)["type"] == "record"]
#: Records only ever used inside a field that is itself withholdable (array items).
CONTAINED = frozenset({"RelatedPerson", "MissedAppointment"})


class Walk:
    """Resolves named types while walking one self-contained schema."""

    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str) and node not in PRIMITIVES:
            return self.named[node.rsplit(".", 1)[-1]]
        if isinstance(node, dict) and node.get("type") in ("record", "enum", "fixed"):
            self.named.setdefault(node["name"], node)
        return node

    def leaves(self, node: Any, path: str, tags: frozenset[str]) -> Iterator[tuple[str, frozenset[str], Any]]:
        """Yield (dotted path, effective tags, leaf type) for every leaf under ``node``, in order."""
        node = self.resolve(node)
        if isinstance(node, list):
            for branch in node:
                yield from self.leaves(branch, path, tags)
        elif isinstance(node, dict) and node["type"] == "record":
            for field in node["fields"]:
                own = frozenset(field.get("confluent:tags", ()))
                yield from self.leaves(field["type"], f"{path}.{field['name']}".lstrip("."), tags | own)
        elif isinstance(node, dict) and node["type"] == "array":
            yield from self.leaves(node["items"], path, tags)
        elif isinstance(node, dict) and node["type"] == "map":
            yield from self.leaves(node["values"], path, tags)
        elif node != "null":
            yield path, tags, node

    def holds_record(self, node: Any) -> bool:
        """Whether ``node`` is, or contains through unions, arrays and maps, a record."""
        node = self.resolve(node)
        if isinstance(node, list):
            return any(self.holds_record(branch) for branch in node)
        if isinstance(node, dict) and node["type"] in ("array", "map"):
            return self.holds_record(node.get("items", node.get("values")))
        return isinstance(node, dict) and node["type"] == "record"

    def fields(
        self, node: Any, seen: set[str] | None = None
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Yield (record, field) for every field of every record under ``node``, once each, in order."""
        seen = set() if seen is None else seen
        node = self.resolve(node)
        if isinstance(node, list):
            for branch in node:
                yield from self.fields(branch, seen)
        elif isinstance(node, dict) and node["type"] == "record" and node["name"] not in seen:
            seen.add(node["name"])
            for field in node["fields"]:
                yield node, field
                yield from self.fields(field["type"], seen)
        elif isinstance(node, dict) and node["type"] in ("array", "map"):
            yield from self.fields(node.get("items", node.get("values")), seen)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_schema_loads_and_parses(name: str) -> None:
    loaded = schemas.load(name)
    assert loaded["name"] == name and loaded["namespace"] == "uk.sgb"
    assert fastavro.parse_schema(loaded)
    assert schemas.parsed(name)
    assert loaded.get("doc", "").strip(), f"{name} has no doc"


@pytest.mark.parametrize("name", RECORDS)
def test_every_leaf_is_tagged_from_the_policy_list(name: str) -> None:
    leaves = list(Walk().leaves(schemas.load(name), "", frozenset()))
    assert leaves
    for path, tags, _ in leaves:
        assert tags, f"{name}.{path} has no sensitivity tag"
        assert tags <= TAGS, f"{name}.{path} has unknown tags {sorted(tags - TAGS)}"


@pytest.mark.parametrize("name", RECORDS)
def test_every_record_and_field_is_documented_and_follows_the_conventions(name: str) -> None:
    walk = Walk()
    for record, field in walk.fields(schemas.load(name)):
        where = f"{record['name']}.{field['name']}"
        assert record.get("doc", "").strip(), f"{record['name']} has no doc"
        assert field.get("doc", "").strip(), f"{where} has no doc"
        assert set(field.get("confluent:tags", ())) <= TAGS, where
        if not walk.holds_record(field["type"]):
            assert field.get("confluent:tags"), f"leaf field {where} carries no tags of its own"
        kind = field["type"]
        if set(field.get("confluent:tags", ())) - {"METADATA"}:
            # Redaction withholds a field by setting it to null (or empty): it must allow that.
            removable = (isinstance(kind, list) and "null" in kind) or (
                isinstance(kind, dict) and kind.get("type") in ("array", "map")
            )
            assert removable or record["name"] in CONTAINED, f"{where} is tagged but cannot be withheld"
        if isinstance(kind, list) and "null" in kind:
            assert kind[0] == "null" and "default" in field and field["default"] is None, where
        if isinstance(kind, dict) and kind.get("type") == "array":
            assert field.get("default") == [], where


def test_enums_are_documented() -> None:
    for name in ALL_NAMES:
        loaded = schemas.load(name)
        if loaded["type"] == "enum":
            assert loaded["doc"].strip() and loaded["symbols"], name


def test_details_union_follows_event_type_order() -> None:
    (details,) = [field for field in ENVELOPE["fields"] if field["name"] == "details"]
    branches = [branch if isinstance(branch, str) else branch["name"] for branch in details["type"]]
    assert [branch.rsplit(".", 1)[-1] for branch in branches] == DETAILS
    assert len(DETAILS) == 14


@pytest.mark.parametrize("name", DETAILS)
def test_details_do_not_repeat_the_childs_identity(name: str) -> None:
    fields = {field["name"] for field in schemas.load(name)["fields"]}
    assert not fields & CHILD_IDENTITY, f"{name} repeats {sorted(fields & CHILD_IDENTITY)}"


# ------------------------------------------------------------------------------------ samples

WHEN = dt.datetime(2026, 3, 4, 8, 15, 30, 123000, tzinfo=dt.UTC)


def sample(node: Any, walk: Walk, *, full: bool) -> Any:
    """A value for ``node``: every field filled when ``full``, only required ones otherwise."""
    node = walk.resolve(node)
    if isinstance(node, list):
        branch = next(b for b in node if b != "null") if full or "null" not in node else "null"
        return sample(branch, walk, full=full)
    if isinstance(node, dict):
        logical, kind = node.get("logicalType"), node["type"]
        if logical == "date":
            return WHEN.date()
        if logical == "timestamp-millis":
            return WHEN
        if kind == "record":
            return {
                field["name"]: sample(field["type"], walk, full=full)
                for field in node["fields"]
                if full or "default" not in field
            }
        if kind == "enum":
            return node["symbols"][-1]
        if kind == "array":
            return [sample(node["items"], walk, full=full)] if full else []
        if kind == "map":
            return {"key": sample(node["values"], walk, full=full)}
        return sample(kind, walk, full=full)
    return {
        "null": None, "boolean": True, "int": 7, "long": 2**40, "float": 0.5, "double": 87.25,
        "bytes": b"\x00\x01", "string": "synthetic",
    }[node]  # fmt: skip


def round_trip(name: str, value: Any, **reader: Any) -> Any:
    parsed = schemas.parsed(name)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, value)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, parsed, None, **reader)


def _fill(value: Any, walk: Walk, schema: Any) -> Any:
    """What a sample reads back as: missing fields take their defaults (samples use first branches)."""
    schema = walk.resolve(schema)
    if value is None:
        return None
    if isinstance(schema, list):
        return _fill(value, walk, next(branch for branch in schema if branch != "null"))
    if isinstance(schema, dict) and schema["type"] == "array":
        return [_fill(item, walk, schema["items"]) for item in value]
    if isinstance(schema, dict) and schema["type"] == "record":
        return {
            field["name"]: _fill(value[field["name"]], walk, field["type"])
            if field["name"] in value
            else field["default"]
            for field in schema["fields"]
        }
    return value


@pytest.mark.parametrize("full", [True, False], ids=["full", "minimal"])
@pytest.mark.parametrize("name", RECORDS)
def test_every_record_round_trips_a_sample(name: str, full: bool) -> None:
    walk = Walk()
    loaded = schemas.load(name)
    value = sample(loaded, walk, full=full)
    assert round_trip(name, value) == _fill(value, walk, loaded)


def _envelope(details: Any, event_type: str) -> dict[str, Any]:
    value = sample(ENVELOPE, Walk(), full=False)
    value.update(event_type=event_type, details=details)
    return value


@pytest.mark.parametrize("redacted", [False, True], ids=["full", "redacted"])
@pytest.mark.parametrize(("event_type", "name"), list(zip(EVENT_TYPES, DETAILS, strict=True)))
def test_a_complete_details_dict_selects_its_branch(event_type: str, name: str, redacted: bool) -> None:
    # Decoded and redacted copies carry every field (withheld ones as null) and no branch name;
    # fastavro then picks the branch that validates with the most matching fields.
    walk = Walk()
    details = sample(schemas.load(name), walk, full=True)
    if redacted:
        for field in schemas.load(name)["fields"]:
            if set(field["confluent:tags"]) != {"METADATA"}:
                details[field["name"]] = field["default"]
    read = round_trip(
        "SafeguardingEvent",
        _envelope(details, event_type),
        return_record_name=True,
        return_record_name_override=True,
    )
    branch, value = read["details"]
    assert branch == f"uk.sgb.{name}"
    assert value == _fill(details, walk, schemas.load(name))


def test_no_details_record_has_a_subset_of_anothers_fields() -> None:
    # What keeps the branch choice above unambiguous for a record with every field null.
    fields = {name: {f["name"] for f in schemas.load(name)["fields"]} for name in DETAILS}
    for name, own in fields.items():
        for other, theirs in fields.items():
            assert other == name or not own <= theirs, f"{name}'s fields are all in {other}"


def test_walk_sees_tags_along_the_path() -> None:
    leaves = {
        path: tags for path, tags, _ in Walk().leaves(schemas.load("LookedAfterStatus"), "", frozenset())
    }
    assert leaves["placement_address.postcode"] == {"CASE_DETAIL", "CONFIDENTIAL_ADDRESS", "CONTACT"}
    assert leaves["responsible_contact.phone"] == {"METADATA"}
    envelope = {path: tags for path, tags, _ in Walk().leaves(ENVELOPE, "", frozenset())}
    assert envelope["details.associates.given_name"] >= {"THIRD_PARTY", "NAME", "CASE_DETAIL"}
    assert envelope["child.confidential_address.line1"] == {"CONFIDENTIAL_ADDRESS", "CONTACT"}


@pytest.mark.parametrize("name", DETAILS)
def test_free_text_in_details_is_narrative(name: str) -> None:
    # A string that holds words rather than a code, a name or an address line must carry
    # NARRATIVE.
    not_prose = re.compile(
        r"(code|_id|reference|ground|_type|reason_ended|academic_year|joining_details|site_name"
        r"|attendance_reason|injury_mechanism|specialty|service|police_operation|offence_types"
        r"|relationship_to_child|given_name|family_name|line1|line2|town|postcode|team|phone|email"
        r"|referrer_organisation)$"
    )
    for path, tags, leaf in Walk().leaves(schemas.load(name), "", frozenset()):
        if leaf == "string" and not not_prose.search(path.rsplit(".", 1)[-1]):
            assert "NARRATIVE" in tags, f"{name}.{path} looks like free text but is not NARRATIVE"
