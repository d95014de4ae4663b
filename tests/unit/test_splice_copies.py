"""A recipient's copy written from the ingress bytes (broker/wire/splice.py) decodes to exactly
what encoding the whole copy gives, for every event type and audience, with fields withheld,
generalised and sealed by the source, with field encryption on, and for copies that cannot
be written at all (both ways refuse them)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import schemas
from broker.exceptions import SerdeError
from broker.security.ciphers import FilterCrypt, cipher_for
from broker.settings import Settings
from broker.wire.codecs import EventSerde
from broker.wire.envelope import DeliveryEnvelope, Source
from broker.wire.registry import InMemoryRegistry
from consent.engine import Engine
from consent.policy import load
from consent.state import ChildState
from schemas.child_keys import child_key
from schemas.validation import SEALED_PREFIX
from sgb.simulate.events import Population, Simulator

EVENTS = 600


@pytest.fixture(scope="module")
def serde() -> EventSerde:
    return EventSerde(InMemoryRegistry())


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda audience, org: True)


def _events(seed: int) -> list[dict[str, Any]]:
    return list(Simulator(Population(300, seed), seed).events(EVENTS))


def _as_sources_sent(event: dict[str, Any], index: int) -> dict[str, Any]:
    """Some events arrive already redacted by their source: fields withheld or generalised."""
    if index % 3 == 1:
        child = {**event["child"], "ethnicity": None}
        return {**event, "child": child, "withheld_fields": ["child.ethnicity"]}
    if index % 3 == 2 and event["child"].get("date_of_birth"):
        child = {**event["child"], "date_of_birth": None}
        return {**event, "child": child, "generalised_fields": {"child.date_of_birth": "7 years"}}
    return event


def _copies(
    serde: EventSerde, engine: Engine, events: list[dict[str, Any]], crypt: FilterCrypt | None = None
) -> Iterator[tuple[dict[str, Any], bytes, dict[str, Any]]]:
    """(copy as the filter encodes it, ingress bytes, the event as decoded from them)."""
    for index, sent in enumerate(events):
        key = child_key(sent["child"]) or ""
        event = _as_sources_sent(sent, index)
        if crypt is not None:
            event = crypt.seal(event, key)
        ingress = serde.encode(event)
        decoded = serde.decode(ingress)
        opened = crypt.open(decoded)[0] if crypt is not None else decoded
        for decision in engine.decide(opened, ChildState()):
            if decision.event is not None:
                copy = crypt.seal(decision.event, key) if crypt is not None else decision.event
                yield copy, ingress, decoded


def _same(serde: EventSerde, copy: dict[str, Any], ingress: bytes, decoded: dict[str, Any]) -> bytes:
    spliced = serde.encode_from(copy, ingress, decoded)
    assert serde.decode(spliced) == serde.decode(serde.encode(copy))
    return spliced


def test_every_copy_of_every_event_type_decodes_as_the_whole_encode(
    serde: EventSerde, engine: Engine
) -> None:
    events = _events(3)
    assert len({e["event_type"] for e in events}) == 14
    copies = list(_copies(serde, engine, events))
    assert len(copies) > EVENTS
    for copy, ingress, decoded in copies:
        spliced = _same(serde, copy, ingress, decoded)
        assert spliced == serde.encode(copy)  # the writer's bytes too, not only the values


def test_with_field_encryption_on_every_copy_decodes_as_the_whole_encode(
    serde: EventSerde, engine: Engine, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path / "state", field_encryption="on")
    cipher_for(settings)
    crypt = FilterCrypt(settings, load())
    copies = list(_copies(serde, engine, _events(5)[:200], crypt))
    assert any(SEALED_PREFIX in repr(c) for c, _, _ in copies)
    for copy, ingress, decoded in copies:
        _same(serde, copy, ingress, decoded)


def test_an_event_sealed_elsewhere_is_copied_as_the_filter_opens_it(
    serde: EventSerde, engine: Engine
) -> None:
    """With field encryption off, an event carrying sealed values is decided with them dropped."""
    for event in _events(7)[:150]:
        sent = {**event, "sealed_values": {"child.date_of_birth": "sgb:v1:opaque"}}
        ingress = serde.encode(sent)
        decoded = serde.decode(ingress)
        opened = {**decoded, "sealed_values": None}
        for decision in engine.decide(opened, ChildState()):
            if decision.event is not None:
                _same(serde, decision.event, ingress, decoded)


_ODD_VALUES: list[Any] = [None, "", "x", "a" * 300, 5, -1, [], {}, ["x"], {"k": "v"}, True, 2.5]


def _disturbed(copy: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The copy with one field, at the top or in a record below, replaced by an arbitrary value."""
    out = dict(copy)
    where = rng.choice(["child", "details", "source", ""])
    if where and isinstance(out.get(where), dict) and out[where]:
        inner = dict(out[where])
        inner[rng.choice(sorted(inner))] = rng.choice(_ODD_VALUES)
        out[where] = inner
    else:
        out[rng.choice(sorted(out))] = rng.choice(_ODD_VALUES)
    return out


def test_a_copy_that_does_not_match_the_schema_fails_or_succeeds_as_the_whole_encode(
    serde: EventSerde, engine: Engine
) -> None:
    rng = random.Random(21)
    copies = list(_copies(serde, engine, _events(11)[:300]))
    outcomes = {"written": 0, "refused": 0}
    for copy, ingress, decoded in copies:
        odd = _disturbed(copy, rng)
        try:
            whole = serde.encode(odd)
        except SerdeError:
            with pytest.raises(SerdeError):
                serde.encode_from(odd, ingress, decoded)
            outcomes["refused"] += 1
            continue
        assert serde.decode(serde.encode_from(odd, ingress, decoded)) == serde.decode(whole)
        outcomes["written"] += 1
    assert outcomes["written"] and outcomes["refused"]


def test_bytes_that_are_not_the_decoded_event_are_not_spliced(serde: EventSerde, engine: Engine) -> None:
    """Fail closed: bytes cut short, or framed for another schema, are not followed; the copy
    is encoded whole."""
    for event in _events(13)[:100]:
        ingress = serde.encode(event)
        for decision in engine.decide(event, ChildState()):
            if decision.event is not None:
                copy = decision.event
                whole = serde.encode(copy)
                assert serde.encode_from(copy, ingress[:-1], event) == whole
                other_schema = b"\x00\xff\xff\xff\xff" + ingress[5:]
                assert serde.encode_from(copy, other_schema, event) == whole


def test_a_delivery_written_from_its_source_is_the_delivery_written_whole(
    serde: EventSerde, engine: Engine
) -> None:
    envelope = DeliveryEnvelope(serde, lambda event, child: event)
    for copy, ingress, decoded in list(_copies(serde, engine, _events(17)[:100])):
        whole = envelope.wrap("t", copy, "child", b"k", [])
        spliced = envelope.wrap("t", copy, "child", b"k", [], None, Source(ingress, decoded))
        assert spliced == whole
