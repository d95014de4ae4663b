"""A source's merge of two records of one patient (an HL7 A40): identity evidence, shared
with no one.

The event's ``merges`` are applied to the child index by the resolver (rule
``HOSPITAL_MERGE``, :mod:`consent.identity.resolver`). Here is what it means for the
recipients: nothing. No rule is consulted (the policy's grants are about what happened to
a child, and a merge is not something that happened to a child), so no audience receives
it, whatever its event type or risk: every candidate audience is withheld, reason
``no_rule``, with no rule, lawful basis or organisation (principles 1 and 8). The decisions
still make the event's audit record, which names the links the merge made (principle 7).
The engine decides so (:meth:`consent.engine.Engine.decide`), so the filter and
``sgb policy evaluate`` agree and no caller of the engine can share a merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from consent.identity import Link, Resolution


def is_merge(event: Mapping[str, Any]) -> bool:
    """Whether the event is a source's merge (identity evidence), not an event to share."""
    return bool(event.get("merges"))


def merge_resolution(identity: Resolution, made: list[Link]) -> Resolution:
    """What a merge's audit record names: the links the merge made (none when every pair
    already had a record, such as an operator's unlink), not the links a decision relied on."""
    return replace(identity, relied=tuple(made))
