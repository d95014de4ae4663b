"""One child across agencies (POLICY.md principle 11): identifiers linked on evidence only.

Pure, like the engine: the index of links (:mod:`consent.identity.links`), the demographics
used for matching (:mod:`consent.identity.demographics`), the Fellegi-Sunter scorer
(:mod:`consent.identity.scoring`), what an event's evidence does to the index
(:mod:`consent.identity.resolver`) and the state of a linked child
(:mod:`consent.identity.linked_state`). Where links and demographics are kept on Kafka and
at rest is :mod:`consent.filter.identity`'s job.
"""

from __future__ import annotations

from consent.identity.demographics import Demographics, demographics_of
from consent.identity.linked_state import linked_state
from consent.identity.links import ChildIndex, Link, link_id
from consent.identity.resolver import Resolution, Resolver
from consent.identity.scoring import MatchModel

__all__ = [
    "ChildIndex",
    "Demographics",
    "Link",
    "MatchModel",
    "Resolution",
    "Resolver",
    "demographics_of",
    "link_id",
    "linked_state",
]
