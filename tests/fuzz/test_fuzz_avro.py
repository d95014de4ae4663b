"""Avro decoding of what arrives on a topic: truncated, bit-flipped, re-framed and random bytes.

The only outcomes are a decoded record or a ``SerdeError`` with a reason (the filter
dead-letters it); never another exception, never a hang.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from factories import domestic_abuse_incident
from hypothesis import example, given
from hypothesis import strategies as st

from broker.exceptions import SerdeError

from .fuzzkit import CODECS, FUZZ, count, mutated

VALID = CODECS.event.encode(domestic_abuse_incident(risk="SIGNIFICANT_HARM"))
SCHEMA_ID = CODECS.event.schema_id
SERDES: dict[str, Any] = {
    "event": CODECS.event,
    "audit": CODECS.audit,
    "dead_letter": CODECS.dead_letter,
    "consent": CODECS.consent,
    "status": CODECS.status,
}


def decodes_or_refuses(serde: Any, data: bytes | None) -> None:
    try:
        record = serde.decode(data)
    except SerdeError as exc:
        assert str(exc), "a refusal without a reason"
        return
    assert isinstance(record, dict)


@FUZZ
@given(st.integers(0, len(VALID)))
def test_truncated_event(cut: int) -> None:
    count("avro: truncated event")
    decodes_or_refuses(CODECS.event, VALID[:cut])


@FUZZ
@given(mutated(VALID))
@example(VALID[:5] + b"\xff" * 12)  # an endless varint
@example(VALID[:5] + b"\x01" + b"\x00" * 3)  # a negative string length
def test_mutated_event(data: bytes) -> None:
    count("avro: mutated event")
    decodes_or_refuses(CODECS.event, data)


@FUZZ
@given(st.sampled_from(sorted(SERDES)), st.binary(max_size=512), st.sampled_from(["own", "unknown", "none"]))
@example("event", b"", "none")
@example("event", b"\x01\x00\x00\x00\x07", "none")  # a bad magic byte
def test_random_framed_bytes(name: str, body: bytes, framing: str) -> None:
    count("avro: random framed bytes")
    serde = SERDES[name]
    header = {"own": struct.pack(">bI", 0, serde.schema_id), "unknown": struct.pack(">bI", 0, 7), "none": b""}
    decodes_or_refuses(serde, header[framing] + body)


@pytest.mark.parametrize("name", sorted(SERDES))
def test_none_and_short_values_are_refused(name: str) -> None:
    for data in (None, b"", b"\x00", b"\x00\x00\x00\x00"):
        with pytest.raises(SerdeError):
            SERDES[name].decode(data)
