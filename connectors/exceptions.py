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
