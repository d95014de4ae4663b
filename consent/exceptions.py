"""Errors raised by the consent package."""

from __future__ import annotations

from schemas.exceptions import SgbError


class ConsentError(SgbError):
    """Base of the consent package's errors."""


class PolicyError(ConsentError):
    """A policy file is invalid or breaks a hard limit; the message names the rule."""


class RedactionError(ConsentError):
    """A delivered copy could not be redacted; the delivery is withheld."""


class EventInvalid(ConsentError):
    """An event cannot be evaluated (it goes to the dead-letter topic)."""
