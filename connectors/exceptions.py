"""Errors raised by the connectors. Each message names the file, row or field and what is
wrong with it, never a value."""

from __future__ import annotations

from schemas.exceptions import SgbError


class ConnectorError(SgbError):
    """A connector cannot go on (bad source, bad mapping file, Kafka gone for good)."""


class MappingFileError(ConnectorError):
    """A mapping file is invalid; the message names the file and the field."""


class MappingError(ConnectorError, ValueError):
    """A record cannot be mapped. The message names what is wrong, never the values."""


class NoEvent(ConnectorError):
    """A record that is valid but describes nothing to publish; the message says why.

    ``kind`` says which sort of nothing, for the run's counts (a subclass names its own)."""

    kind: str = "no_event"


class SourceFileError(ConnectorError):
    """A whole file cannot be read (not the format it claims, unreadable encoding)."""


class UnsupportedFile(SourceFileError):
    """A file in the source that this connector does not read (another format, another table)."""


class SkippedFile(SourceFileError):
    """A file the connector recognises but publishes nothing from (an SSDA903 table it does not map).

    Args:
        kind: what it is (the table's name), counted in the run's summary.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class WrongSource(SourceFileError):
    """A file that contradicts the run's settings (another authority's return than ``--la``):
    refused in one sentence, neither dead-lettered nor checkpointed, so it is read once the
    settings are right."""
