"""The identity steps the filter runs per event, made cheaper, give what they gave before:
the demographics' text (its fingerprint decides whether a child is matched again) and the
candidates a lookup finds among the batch's pending records (issue 21, CPU per event)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from datetime import date
from pathlib import Path

from consent.filter.identity import SealedDemographics
from consent.identity import Demographics

_NAMES = ["amelia", "oliver", "jack", "alfie", None, "sophie"]
_FAMILIES = ["smith", "jones", None, "patel", "khan"]


def _random(rng: random.Random) -> Demographics:
    return Demographics(
        rng.choice(_NAMES),
        rng.choice(_FAMILIES),
        rng.choice([None, date(2015, rng.randint(1, 12), rng.randint(1, 28))]),
        rng.choice([None, "LS14AP", "M11AE"]),
        rng.choice([None, "100000"]),
    )


def test_dumps_is_the_text_asdict_gave() -> None:
    rng = random.Random(5)
    for _ in range(500):
        demo = _random(rng)
        data = asdict(demo)
        data["date_of_birth"] = demo.date_of_birth.isoformat() if demo.date_of_birth else None
        assert demo.dumps() == json.dumps(data, separators=(",", ":"))
        assert Demographics.loads(demo.dumps()) == demo


def test_a_lookup_finds_the_pending_records_sharing_a_block(tmp_path: Path) -> None:
    rng = random.Random(9)
    store = SealedDemographics(tmp_path / "d.db", b"s" * 32, b"b" * 32)
    pending: dict[str, Demographics] = {}
    for round_ in range(3):
        for _ in range(300):
            key = f"k{rng.randint(0, 120)}"  # the same child again replaces its pending record
            demo = _random(rng)
            store.put(key, demo)
            pending[key] = demo
            probe = _random(rng).blocks()
            expected = {k for k, d in pending.items() if set(probe) & set(d.blocks())}
            assert expected <= store.lookup(probe)
            assert store.lookup(probe) - expected <= _stored(store, probe)
        if round_ == 1:
            store.rollback()
        else:
            store.commit()
        pending.clear()
        assert not store.lookup([])
    store.close()


def _stored(store: SealedDemographics, probe: tuple[str, ...]) -> set[str]:
    """What the committed rows give for ``probe``, pending records aside."""
    saved = dict(store._pending)  # test-only: the committed part of a lookup
    store._pending.clear()
    blocks = dict(store._pending_blocks)
    store._pending_blocks.clear()
    try:
        return store.lookup(probe)
    finally:
        store._pending.update(saved)
        store._pending_blocks.update(blocks)
