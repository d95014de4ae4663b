"""A run that checks an export before going live: read and map, no Kafka, nothing written.

:class:`DryRunDelivery` stands where the transactional delivery would and keeps, in memory,
what would have been published, dead-lettered and reported; :class:`MemoryCheckpoints`
stands for the checkpoint store and remembers nothing beyond the run, so every file is read
as if new and no checkpoint (nor snapshot log) on disk moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.exceptions import SerdeError
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from connectors.runtime.checkpoint import FileProgress
from connectors.runtime.event_builder import Finding
from connectors.runtime.records import SourceRecord


@dataclass(frozen=True, slots=True)
class Place:
    """Where a reason applies: the file and the row or element, as the dead letter would say."""

    source: str
    position: str
    reason: str

    def line(self) -> str:
        """``cin.xml, Child 3 / CINdetails 1: ...``"""
        return f"{self.source}, {self.position}: {self.reason}"


def schema_check(kind: str = "event") -> Callable[[dict[str, Any]], bytes]:
    """Encodes a record as the real delivery would (``event``, or ``consent`` for consent
    records), against the schemas in the package with no registry server: a record that does
    not fit raises ``SerdeError`` (or ``ValueError``), as it would when published."""
    codecs = Codecs(InMemoryRegistry())
    return codecs.consent.encode if kind == "consent" else codecs.event.encode


@dataclass
class DryRunDelivery:
    """What a run would send, kept in memory; nothing reaches Kafka. Each record is encoded
    (see :func:`schema_check`), so one that would be dead-lettered for its schema is here too."""

    encode: Callable[[dict[str, Any]], bytes] = field(default_factory=schema_check)
    published: int = 0
    dead_letters: list[Place] = field(default_factory=list)
    findings: list[Place] = field(default_factory=list)
    _done: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return len(self._done)

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        try:
            self.encode(event)
        except (TypeError, KeyError) as exc:  # as the real serde reports a record that does not fit
            msg = f"The record does not fit the schema ({type(exc).__name__})."
            raise SerdeError(msg) from None
        self.published += 1
        self._done.append((record.file_id, record.ordinal))

    def dead_letter(self, record: SourceRecord, reason: str) -> None:
        self.dead_letters.append(Place(record.source, record.position, reason))
        self._done.append((record.file_id, record.ordinal))

    def data_quality(self, record: SourceRecord, findings: list[Finding], event_id: str) -> None:
        self.findings += [Place(record.source, record.position, f.sentence()) for f in findings]

    def skip(self, record: SourceRecord) -> None:
        self._done.append((record.file_id, record.ordinal))

    def positions(self) -> list[tuple[str, int]]:
        return list(self._done)

    def checkpoint(self, file_id: str, progress: FileProgress) -> None:
        """A dry run moves no checkpoint."""

    def commit(self) -> list[tuple[str, int]]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done = []


class MemoryCheckpoints:
    """Checkpoints that last only for the run (the dry run moves none on disk)."""

    def __init__(self) -> None:
        self._files: dict[str, FileProgress] = {}

    def get(self, file_id: str) -> FileProgress | None:
        return self._files.get(file_id)

    def put(self, file_id: str, progress: FileProgress) -> None:
        self._files[file_id] = progress
