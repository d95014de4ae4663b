"""Helpers for the tests of returns as authorities send them: a file connector run with the
dry-run delivery, and what "every record accounted for" means."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from factories import KeepingDelivery

from connectors.local_authority import LaMapper, LaProfile
from connectors.local_authority import synthetic as syn
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.summary import Summary
from schemas.identifiers import synthetic_upn


def run(reader: Any, map_record: Any, source: Path, state: Path) -> tuple[Summary, KeepingDelivery]:
    delivery = KeepingDelivery()
    runner = FileConnector("la-test", reader, map_record, delivery, CheckpointStore(state))
    return runner.run_batch(source, threading.Event()), delivery


def bad_upn(rng: random.Random) -> str:
    """A UPN whose check letter is wrong (the rest of it well formed)."""
    upn = synthetic_upn(rng, "202")
    letter = next(c for c in "ABCDEFGHJKLMNPQRTUVWXYZ" if c != upn[0])
    return letter + upn[1:]


def cin(folder: Path, *kids: syn.CinChild, name: str = "cin.xml", la: str = "202") -> Path:
    folder.mkdir(exist_ok=True)
    return syn.write_cin(folder / name, kids, la)


def la_mapper(system: str = "cin-census") -> LaMapper:
    return LaMapper(LaProfile(), system)


def accounted(summary: Summary) -> bool:
    """Every record read was published, dead-lettered or had nothing to publish."""
    c = summary.counts
    return c["read"] == c["published"] + c["dead_lettered"] + c["no_event"] + c["already_done"]
