"""The consent-and-role filter: policy model, decision engine, redaction, per-child state."""

from __future__ import annotations

from consent.engine import Decision, Engine
from consent.exceptions import ConsentError, EventInvalid, PolicyError, RedactionError
from consent.policy import Policy, load
from consent.state import ChildState

__all__ = [
    "ChildState",
    "ConsentError",
    "Decision",
    "Engine",
    "EventInvalid",
    "Policy",
    "PolicyError",
    "RedactionError",
    "load",
]
