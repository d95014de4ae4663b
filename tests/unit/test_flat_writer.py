"""The compiled flat-record writer writes exactly what fastavro writes."""

from __future__ import annotations

import io
from datetime import UTC, datetime

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
