"""What a file connector (:class:`connectors.runtime.pipeline.FileConnector`) needs from the
places it writes to: a delivery that publishes, dead-letters and commits in transactions, and
a store of each file's checkpoint. Kafka and the tests' recorders both fit."""

from __future__ import annotations

from typing import Any, Protocol

from connectors.runtime.checkpoint import FileProgress
from connectors.runtime.event_builder import Finding
from connectors.runtime.records import SourceRecord


class Checkpoints(Protocol):
    """Where a run keeps each file's progress (:class:`CheckpointStore`, or memory for a dry run)."""

    def get(self, file_id: str) -> FileProgress | None: ...

    def put(self, file_id: str, progress: FileProgress) -> None: ...


class Delivery(Protocol):
    """Where records go (Kafka in a transaction, see :class:`TransactionalDelivery`)."""

    @property
    def pending(self) -> int: ...

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None: ...

    def dead_letter(self, record: SourceRecord, reason: str) -> None: ...

    def data_quality(self, record: SourceRecord, findings: list[Finding], event_id: str) -> None: ...

    def skip(self, record: SourceRecord) -> None: ...

    def positions(self) -> list[tuple[str, int]]: ...

    def checkpoint(self, file_id: str, progress: FileProgress) -> None: ...

    def commit(self) -> list[tuple[str, int]]: ...

    def close(self) -> None: ...
