"""The child index: which identifiers (child keys) are one child, and on what evidence.

Each pair of identifiers has at most one record in force, the newest (the compacted
``sg.identity.links.v1`` keeps it): ``LINKED``, ``CANDIDATE`` (waiting for a person) or
``UNLINKED`` (an operator undid or refused it; evidence never links that pair again
automatically). A child is the set of identifiers connected by ``LINKED`` pairs.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

LINKED, CANDIDATE, UNLINKED = "LINKED", "CANDIDATE", "UNLINKED"
#: Beyond this many identifiers a cluster is not walked further: one child has a handful
#: (an NHS number, an LA id per authority, a UPN, a police reference, a few hospital ids).
MAX_CLUSTER = 64


def link_id(a: str, b: str) -> str:
    """The stable id of a pair of identifiers, whichever order they come in."""
    low, high = sorted((a, b))
    return hashlib.sha256(f"sgb.link.v1\n{low}\n{high}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Link:
    """Where one pair of identifiers stands (an ``IdentityLink`` record). Holds identifiers:
    never log it; log ``link_id`` only."""

    a: str
    b: str
    state: str
    rule: str
    band: str
    recorded_at: datetime
    decided_by: str = "filter"
    match_weight: float | None = None
    agreed_fields: tuple[str, ...] = ()
    local_authority_code: str | None = None
    reason: str | None = None
    event_id: str | None = None

    @property
    def link_id(self) -> str:
        return link_id(self.a, self.b)

    @classmethod
    def between(cls, a: str, b: str, **fields: Any) -> Link:
        """A link between two identifiers, ``a`` the smaller (as the record orders them)."""
        low, high = sorted((a, b))
        fields.setdefault("recorded_at", datetime.now(UTC))
        return cls(low, high, **fields)

    def record(self) -> dict[str, Any]:
        """The ``IdentityLink`` record."""
        return {
            "link_id": self.link_id,
            "child_key_a": self.a,
            "child_key_b": self.b,
            "state": self.state,
            "rule": self.rule,
            "band": self.band,
            "match_weight": self.match_weight,
            "agreed_fields": list(self.agreed_fields) if self.agreed_fields else None,
            "local_authority_code": self.local_authority_code,
            "reason": self.reason,
            "decided_by": self.decided_by,
            "recorded_at": self.recorded_at,
            "event_id": self.event_id,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Link:
        """The inverse of :meth:`record`."""
        recorded = record["recorded_at"]
        if isinstance(recorded, datetime) and recorded.tzinfo is None:
            recorded = recorded.replace(tzinfo=UTC)
        return cls.between(
            str(record["child_key_a"]),
            str(record["child_key_b"]),
            state=str(record["state"]),
            rule=str(record["rule"]),
            band=str(record["band"]),
            recorded_at=recorded,
            decided_by=str(record.get("decided_by") or "filter"),
            match_weight=record.get("match_weight"),
            agreed_fields=tuple(record.get("agreed_fields") or ()),
            local_authority_code=record.get("local_authority_code"),
            reason=record.get("reason"),
            event_id=record.get("event_id"),
        )

    def superseded(self, state: str, **fields: Any) -> Link:
        """This pair in a new state (an operator's decision, or a candidate made a link)."""
        fields.setdefault("recorded_at", datetime.now(UTC))
        return replace(self, state=state, **fields)


class ChildIndex:
    """Every pair's record in force, and the linked children they make."""

    __slots__ = ("_edges", "_pairs")

    def __init__(self) -> None:
        self._pairs: dict[str, Link] = {}
        self._edges: dict[str, dict[str, str]] = {}

    def __len__(self) -> int:
        return len(self._pairs)

    def apply(self, link: Link) -> None:
        """Put ``link`` in force for its pair (the newest record of a pair wins)."""
        lid = link.link_id
        old = self._pairs.get(lid)
        if old is not None and old.recorded_at > link.recorded_at:
            return
        self._pairs[lid] = link
        if link.state == LINKED:
            self._edges.setdefault(link.a, {})[link.b] = lid
            self._edges.setdefault(link.b, {})[link.a] = lid
        else:
            self._edges.get(link.a, {}).pop(link.b, None)
            self._edges.get(link.b, {}).pop(link.a, None)

    def restore(self, lid: str, previous: Link | None) -> None:
        """Put a pair back as it was (a record of an aborted transaction is forgotten)."""
        current = self._pairs.pop(lid, None)
        if current is not None:
            self._edges.get(current.a, {}).pop(current.b, None)
            self._edges.get(current.b, {}).pop(current.a, None)
        if previous is not None:
            self.apply(previous)

    def pair(self, a: str, b: str) -> Link | None:
        """The record in force for a pair, if any."""
        return self._pairs.get(link_id(a, b))

    def get(self, lid: str) -> Link | None:
        """The record in force with this link id."""
        return self._pairs.get(lid)

    def links(self) -> Iterator[Link]:
        """Every record in force."""
        return iter(self._pairs.values())

    def cluster(self, key: str) -> tuple[frozenset[str], tuple[Link, ...]]:
        """The identifiers linked to ``key`` (itself included) and the links that join them
        (a spanning tree from ``key``: the links a decision about ``key`` relies on)."""
        if key not in self._edges:
            return frozenset((key,)), ()
        seen, relied = {key}, []
        queue = deque((key,))
        while queue and len(seen) < MAX_CLUSTER:
            here = queue.popleft()
            for other, lid in self._edges.get(here, {}).items():
                if other not in seen:
                    seen.add(other)
                    relied.append(self._pairs[lid])
                    queue.append(other)
        return frozenset(seen), tuple(relied)

    def candidates(self, local_authority_code: str | None = None) -> list[Link]:
        """Pairs waiting for a person, for one authority (all when None), oldest first."""
        found = [
            link
            for link in self._pairs.values()
            if link.state == CANDIDATE
            and (local_authority_code is None or link.local_authority_code == local_authority_code)
        ]
        return sorted(found, key=lambda link: link.recorded_at)


def load_index(records: Iterable[Mapping[str, Any]]) -> ChildIndex:
    """An index from ``IdentityLink`` records in offset order."""
    index = ChildIndex()
    for record in records:
        index.apply(Link.from_record(record))
    return index
