"""The root error, and the errors of the contract itself. Each message is one sentence a user
can act on and never quotes a value."""

from __future__ import annotations


class SgbError(Exception):
    """Base of every error sgb reports to a user (the command line prints it without a traceback)."""


class SchemaError(SgbError):
    """A schema file is missing, unreadable or not valid Avro."""


class ReferenceDataError(SgbError):
    """The reference table is missing, malformed or inconsistent."""


class InvalidIdentifier(SgbError, ValueError):
    """An identifier is malformed. The message says what is wrong, never the value."""


class TopicsError(SgbError):
    """The topic declaration is invalid or could not be applied."""


class InvalidEvent(SgbError):
    """An event breaks its schema or an identifier rule; the message names the field, never its value."""
