"""The compiled state-record reader returns exactly what the serde's decode does (issue 21, item 5)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import schemas
from broker.exceptions import SerdeError
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from consent.state_codec import StateRecordReader


def _text(rng: random.Random) -> str:
    return "".join(rng.choice("aZ09-ß漢\U0001f600 ") for _ in range(rng.randrange(0, 90)))


def _maybe(rng: random.Random, value: Any) -> Any:
    return value if rng.random() < 0.6 else None


def _when(rng: random.Random) -> datetime:
    # Before and after the epoch, to the millisecond; varints of one to six bytes.
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(-(10**12), 10**13))


def consent(rng: random.Random) -> dict[str, Any]:
    return {
        "consent_id": _text(rng),
        "nhs_number": _maybe(rng, _text(rng)),
        "la_child_id": _maybe(rng, _text(rng)),
        "local_authority_code": _maybe(rng, _text(rng)),
        "upn": _maybe(rng, _text(rng)),
        "audience": rng.choice(("MASH", "FAMILY_HELP", "SCHOOL_DSL", "GP", "POLICE_PPU", "ALL")),
        "purpose": "FAMILY_HELP",
        "state": rng.choice(("GIVEN", "REFUSED", "WITHDRAWN", "NOT_SOUGHT")),
        "given_by": _maybe(rng, rng.choice(("PARENT", "CHILD", "OTHER"))),
        "recorded_at": _when(rng),
        "recorded_by": _text(rng),
    }


def status(rng: random.Random) -> dict[str, Any]:
    def day() -> date | None:
        return _maybe(rng, date(1970, 1, 1) + timedelta(days=rng.randrange(-30_000, 30_000)))

    return {
        "child_key": _maybe(rng, _text(rng)),
        "child_protection_plan_active": rng.random() < 0.5,
        "child_protection_plan_local_authority_code": _maybe(rng, _text(rng)),
        "child_protection_plan_start_date": day(),
        "looked_after_active": rng.random() < 0.5,
        "looked_after_local_authority_code": _maybe(rng, _text(rng)),
        "looked_after_start_date": day(),
        "school_urn": _maybe(rng, _text(rng)),
        "gp_practice_ods": _maybe(rng, _text(rng)),
        "local_authority_code": _maybe(rng, _text(rng)),
        "updated_at": _when(rng),
        "updated_by_event_id": _maybe(rng, _text(rng)),
        "fact_versions": {_text(rng): rng.randrange(-(2**62), 2**62) for _ in range(rng.randrange(0, 70))},
        "written_by": _maybe(rng, _text(rng)),
        "child_protection_plan_event_id": _maybe(rng, _text(rng)),
        "looked_after_event_id": _maybe(rng, _text(rng)),
    }


@pytest.mark.parametrize(("name", "make"), [("ConsentRecord", consent), ("ChildStatus", status)])
def test_the_compiled_reader_decodes_as_the_serde_does(name: str, make: Any) -> None:
    rng = random.Random(21)
    codecs = Codecs(InMemoryRegistry())
    serde = codecs.consent if name == "ConsentRecord" else codecs.status
    reader = StateRecordReader(schemas.load(name), serde.schema_id, serde.decode)
    for _ in range(500):
        value = serde.encode(make(rng))
        assert reader.decode(value) == serde.decode(value)
        broken = value[: rng.randrange(len(value))] if rng.random() < 0.5 else value + b"\x02"
        try:
            expected: Any = serde.decode(broken)
        except SerdeError as exc:
            expected = str(exc)
        try:
            got: Any = reader.decode(broken)
        except SerdeError as exc:
            got = str(exc)
        assert got == expected


def test_another_writer_schema_goes_to_the_fallback() -> None:
    codecs = Codecs(InMemoryRegistry())
    serde = codecs.consent
    seen: list[bytes] = []

    def fallback(data: bytes) -> dict[str, Any]:
        seen.append(data)
        return serde.decode(data[:1] + serde.schema_id.to_bytes(4, "big") + data[5:])

    reader = StateRecordReader(schemas.load("ConsentRecord"), serde.schema_id, fallback)
    value = serde.encode(consent(random.Random(1)))
    other = value[:1] + (serde.schema_id + 1).to_bytes(4, "big") + value[5:]
    assert reader.decode(other) == serde.decode(value)
    assert seen == [other]
