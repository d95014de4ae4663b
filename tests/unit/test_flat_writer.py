"""The compiled flat-record writer writes exactly what fastavro writes."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from broker.exceptions import Unsupported
from broker.wire.avro_writer import compile_record

AUDIT = schemas.load("AuditDecision")
PARSED = fastavro.parse_schema(AUDIT)
WRITE = compile_record(AUDIT)
OPTIONAL = st.one_of(st.none(), st.text(max_size=20))


def _node(name: str, fields: list[dict] | None = None) -> dict:  # type: ignore[type-arg]
    field = next(f for f in (fields or AUDIT["fields"]) if f["name"] == name)
    return field["type"] if isinstance(field["type"], dict) else next(t for t in field["type"] if t != "null")


def enum(name: str, fields: list[dict] | None = None) -> st.SearchStrategy[str]:  # type: ignore[type-arg]
    return st.sampled_from(_node(name, fields)["symbols"])


LINK = _node("identity_links")["items"]  # a nested record: the links a decision relied on
LINKS = st.one_of(
    st.none(),
    st.lists(
        st.fixed_dictionaries(
            {
                "link_id": st.text(max_size=20),
                "rule": enum("rule", LINK["fields"]),
                "band": enum("band", LINK["fields"]),
            }
        ),
        max_size=3,
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    record=st.fixed_dictionaries(
        {
            "event_id": st.text(max_size=40),
            "event_type": enum("event_type"),
            "audience": enum("audience"),
            "organisation": OPTIONAL,
            "outcome": enum("outcome"),
            "reason": st.one_of(st.none(), enum("reason")),
            "rule": OPTIONAL,
            "lawful_basis": OPTIONAL,
            "consent_state": OPTIONAL,
            "policy_version": st.text(max_size=30),
            "removed_fields": st.lists(st.text(max_size=30), max_size=5),
            "transformed_fields": st.lists(st.text(max_size=30), max_size=3),
            "decided_at": st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
            "delivery_topic": OPTIONAL,
            "child_identifier": OPTIONAL,
            "identity_links": LINKS,
            "correction": st.one_of(st.none(), enum("correction")),
            "corrects_event_id": OPTIONAL,
        }
    )
)
def test_same_bytes_as_fastavro(record: dict) -> None:  # type: ignore[type-arg]
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, PARSED, record)
    assert WRITE(record) == expected.getvalue()


def test_records_with_nested_types_are_left_to_fastavro() -> None:
    with pytest.raises(Unsupported):
        compile_record(schemas.load("SafeguardingEvent"))


ENUM = {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}
SUB = {
    "type": "record",
    "name": "Sub",
    "fields": [{"name": "x", "type": "string"}, {"name": "y", "type": ["null", "long"], "default": None}],
}
TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}
DAY = {"type": "int", "logicalType": "date"}
#: Every kind of type sgb's schemas use, each plain and in a union with null.
EVERY_KIND = {
    "type": "record",
    "name": "EveryKind",
    "namespace": "uk.sgb.test",
    "fields": [
        {"name": "string", "type": "string"},
        {"name": "int", "type": "int"},
        {"name": "long", "type": "long"},
        {"name": "boolean", "type": "boolean"},
        {"name": "double", "type": "double"},
        {"name": "float", "type": "float"},
        {"name": "bytes", "type": "bytes"},
        {"name": "enum", "type": ENUM},
        {"name": "timestamp", "type": TIMESTAMP},
        {"name": "date", "type": DAY},
        {"name": "sub", "type": SUB},
        {"name": "array", "type": {"type": "array", "items": "Sub"}},
        {"name": "map", "type": {"type": "map", "values": "long"}},
        *(
            {"name": f"maybe_{kind}", "type": ["null", kind], "default": None}
            for kind in ("string", "int", "long", "boolean", "double", "Colour", "Sub")
        ),
        {"name": "maybe_timestamp", "type": ["null", TIMESTAMP], "default": None},
        {"name": "maybe_date", "type": ["null", DAY], "default": None},
        {"name": "defaulted", "type": "string", "default": "d"},
    ],
}
EVERY_KIND_PARSED = fastavro.parse_schema(EVERY_KIND)
EVERY_KIND_WRITE = compile_record(EVERY_KIND)
# Values of every Python type, right and wrong for each field: the writer must take exactly
# what fastavro takes and write it as fastavro does, or leave it to fastavro.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 63, 64, -64, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63]),
    st.floats(allow_nan=False, width=32) | st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(["RED", "BLUE", "PURPLE"]),
    st.binary(max_size=5),
    st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)),  # naive
    st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.dates(),
    st.lists(st.fixed_dictionaries({"x": st.text(max_size=5)}), max_size=3),
    st.tuples(st.just("uk.sgb.test.Sub"), st.fixed_dictionaries({"x": st.just("t")})),
    st.dictionaries(st.text(max_size=3), st.integers(-5, 5), max_size=3),
    st.fixed_dictionaries(
        {"x": st.text(max_size=5)}, optional={"y": st.integers(-3, 3), "-type": st.just("Sub")}
    ),
)
GOOD = {
    "string": "s",
    "int": 1,
    "long": 2,
    "boolean": True,
    "double": 1.5,
    "float": 0.25,
    "bytes": b"b",
    "enum": "RED",
    "timestamp": datetime(2026, 12, 7, 9, 30, 1, 999_999, tzinfo=UTC),
    "date": datetime(2026, 12, 7).date(),
    "sub": {"x": "x"},
    "array": [{"x": "a", "y": 3}],
    "map": {"k": -1},
}


def _outcome(write: Any) -> bytes | str:
    try:
        return bytes(write())
    except Exception as exc:
        return f"refused ({type(exc).__name__})"


@settings(max_examples=600, deadline=None)
@given(field=st.sampled_from([f["name"] for f in EVERY_KIND["fields"]]), value=ANY_VALUE, drop=st.booleans())
def test_every_kind_of_value_is_written_as_fastavro_writes_it_or_refused_as_it_refuses(
    field: str, value: Any, drop: bool
) -> None:
    record = dict(GOOD)
    if drop:
        record.pop(field, None)
    else:
        record[field] = value

    def fast() -> bytes:
        return WRITE_EVERY(record)

    def reference() -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, EVERY_KIND_PARSED, record)
        return buf.getvalue()

    assert _outcome(fast) == _outcome(reference)


def test_the_compiled_writer_alone_writes_good_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed is the point: a well-formed record is written without fastavro."""
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, EVERY_KIND_PARSED, GOOD)
    monkeypatch.setattr(fastavro, "schemaless_writer", _no_fastavro)
    assert WRITE_EVERY(GOOD) == expected.getvalue()


def _no_fastavro(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("fastavro was asked to write a record the compiled writer should write")


WRITE_EVERY = EVERY_KIND_WRITE
