"""The connector runtime every agency shares: source records and mapping errors, readers,
transactional delivery with dead letters, checkpoints, and the file loop (batch or watch)."""

from __future__ import annotations

from connectors.exceptions import ConnectorError, MappingError, MappingFileError, NoEvent
from connectors.runtime.records import MapRecord, SourceRecord

__all__ = ["ConnectorError", "MapRecord", "MappingError", "MappingFileError", "NoEvent", "SourceRecord"]
