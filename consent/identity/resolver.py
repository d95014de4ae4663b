"""What an event's evidence does to the child index, and which linked child it is about.

Deterministic evidence first: the identifiers one record names together (an LA record with
an NHS number, a FHIR Patient with an MRN and an NHS number, an HL7 PID with several) are
linked at once, and so are the two records of a source's merge (an HL7 A40's PID and MRG:
rule ``HOSPITAL_MERGE``, even when both are already in one child, so the audit names the
merge's own link). Then the demographics: a record whose demographics are new or changed is
scored against the records sharing a blocking key with it. One other child at or above the
policy's upper threshold is linked automatically (when the given names agree and the two
hold no identifiers of the same kind, such as two NHS numbers); from the lower threshold
up, or when more than one child clears it, the pair is queued for a person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from consent.identity.demographics import Demographics, demographics_of
from consent.identity.links import CANDIDATE, LINKED, ChildIndex, Link
from consent.identity.scoring import MatchModel, Score
from schemas.child_keys import child_identifiers, identifier_kind, identifier_namespace

#: A blocking key shared by more records than this says little (a placeholder name, a test
#: fixture's one child): it is not used, so one lookup never scores more than a few hundred.
MAX_BLOCK = 100
#: At most this many other children are queued for a person from one record, the best first.
MAX_QUEUED = 3


class DemographicStore(Protocol):
    """Demographics by child key, and the keys sharing a blocking key."""

    def get(self, key: str) -> Demographics | None: ...

    def put(self, key: str, demographics: Demographics) -> None: ...

    def unchanged(self, key: str, demographics: Demographics) -> bool: ...

    def lookup(self, blocks: Iterable[str]) -> set[str]:
        """The keys sharing a blocking key, leaving out blocks of more than ``MAX_BLOCK``."""


class Thresholds(Protocol):
    """The policy's two thresholds (:class:`consent.policy.IdentityThresholds`)."""

    @property
    def automatic_link(self) -> float: ...

    @property
    def review(self) -> float: ...


class MemoryDemographics:
    """A :class:`DemographicStore` in memory (benchmarks, tests, ``sgb policy evaluate``)."""

    __slots__ = ("_blocks", "_by_key")

    def __init__(self) -> None:
        self._by_key: dict[str, Demographics] = {}
        self._blocks: dict[str, set[str]] = {}

    def get(self, key: str) -> Demographics | None:
        return self._by_key.get(key)

    def put(self, key: str, demographics: Demographics) -> None:
        self._by_key[key] = demographics
        for block in demographics.blocks():
            self._blocks.setdefault(block, set()).add(key)

    def unchanged(self, key: str, demographics: Demographics) -> bool:
        return self._by_key.get(key) == demographics

    def lookup(self, blocks: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for block in blocks:
            members = self._blocks.get(block, set())
            if len(members) <= MAX_BLOCK:
                found |= members
        return found


@dataclass(frozen=True, slots=True)
class Resolution:
    """The linked child an event is about: the identifier it used, every identifier linked to
    it, and the links that join them (what the audit names)."""

    key: str
    members: frozenset[str]
    relied: tuple[Link, ...]

    @property
    def identifier_kind(self) -> str | None:
        return identifier_kind(self.key)

    @property
    def others(self) -> tuple[str, ...]:
        """The linked identifiers other than the event's, in a stable order."""
        return tuple(sorted(self.members - {self.key}))

    def audit_links(self) -> list[dict[str, str]] | None:
        """The ``identity_links`` of the audit record: id, rule and band of each link relied on."""
        if not self.relied:
            return None
        return [{"link_id": link.link_id, "rule": link.rule, "band": link.band} for link in self.relied]


def _namespaces(keys: Iterable[str]) -> set[str]:
    return {identifier_namespace(key) for key in keys}


class Resolver:
    """Applies an event's evidence to the index and says which linked child it is about.

    Args:
        index: the links in force.
        demographics: where each identifier's demographics are kept.
        model: the Fellegi-Sunter model.
        thresholds: the policy's ``identity`` thresholds.
    """

    __slots__ = ("demographics", "index", "model", "name", "thresholds")

    def __init__(
        self,
        index: ChildIndex,
        demographics: DemographicStore,
        model: MatchModel,
        thresholds: Thresholds,
        name: Callable[[str], str] | None = None,
    ) -> None:
        self.index, self.demographics, self.model, self.thresholds = index, demographics, model, thresholds
        #: How identifiers are named in the index and on the link topic (pseudonyms with field encryption on).
        self.name: Callable[[str], str] = name or _same

    def observe(self, event: Mapping[str, Any], now: datetime | None = None) -> list[Link]:
        """Apply the event's evidence; returns the new link and candidate records (already in
        force in the index) for the link topic."""
        child = event.get("child") or {}
        keys = tuple(dict.fromkeys(self.name(k) for k in child_identifiers(child)))
        if not keys:
            return []
        now = now or datetime.now(UTC)
        key, la, event_id = keys[0], child.get("local_authority_code"), event.get("event_id")
        made: list[Link] = []
        for other in keys[1:]:
            if other in self.index.cluster(key)[0] or self.index.pair(key, other) is not None:
                continue  # linked already, or a person has decided about this pair
            made.append(self._put(Link.between(key, other, state=LINKED, rule="AGENCY_XREF",
                                               band="DETERMINISTIC", recorded_at=now,
                                               local_authority_code=la, event_id=event_id)))  # fmt: skip
        # A source's merge: its records are one patient (never on a correction, which is refused).
        for merge in () if event.get("correction") else event.get("merges") or ():
            made.extend(self._merge(merge, la, event_id, now))
        demo = demographics_of(child)
        if demo is not None and not self.demographics.unchanged(key, demo):
            self.demographics.put(key, demo)
            made.extend(self._match(key, demo, la, event_id, now))
        return made

    def _merge(self, merge: Mapping[str, Any], la: str | None, event_id: Any, now: datetime) -> list[Link]:
        """Link a merge's surviving identifier to its others (the record's own, ``AGENCY_XREF``)
        and to the merged record's (``HOSPITAL_MERGE``). A pair that has a record already
        (linked, waiting for a person, or unlinked by one) is left as it is."""
        if not merge["identifiers"]:
            return []  # refused by validation before it gets here
        first, *own = (self.name(k) for k in merge["identifiers"])
        merged = [self.name(k) for k in merge["merged_identifiers"]]
        made = []
        for rule, others in (("AGENCY_XREF", own), ("HOSPITAL_MERGE", merged)):
            for other in others:
                if other == first or self.index.pair(first, other) is not None:
                    continue
                if other in self.index.cluster(first)[0] and rule == "AGENCY_XREF":
                    continue
                made.append(self._put(Link.between(first, other, state=LINKED, rule=rule,
                                                   band="DETERMINISTIC", recorded_at=now,
                                                   local_authority_code=la, event_id=event_id)))  # fmt: skip
        return made

    def resolve(self, key: str) -> Resolution:
        """The linked child of ``key``."""
        members, relied = self.index.cluster(key)
        return Resolution(key, members, relied)

    def _put(self, link: Link) -> Link:
        self.index.apply(link)
        return link

    def _match(
        self, key: str, demo: Demographics, la: str | None, event_id: Any, now: datetime
    ) -> list[Link]:
        members, _ = self.index.cluster(key)
        best: dict[frozenset[str], tuple[str, Score]] = {}
        for candidate in self.demographics.lookup(demo.blocks()) - members:
            theirs = self.demographics.get(candidate)
            if theirs is None:
                continue
            score = self.model.score(demo, theirs)
            if score.match_weight < self.thresholds.review:
                continue
            cluster = self.index.cluster(candidate)[0]
            if cluster not in best or score.match_weight > best[cluster][1].match_weight:
                best[cluster] = (candidate, score)
        automatic = [
            cluster
            for cluster, (candidate, score) in best.items()
            if score.match_weight >= self.thresholds.automatic_link
            and self.model.may_link_automatically(score)
            and not (_namespaces(members) & _namespaces(cluster))
        ]
        made = []
        ranked = sorted(best.items(), key=lambda item: -item[1][1].match_weight)
        for cluster, (candidate, score) in ranked[:MAX_QUEUED]:
            if self.index.pair(key, candidate) is not None:
                continue  # already queued, or decided by a person
            linked = len(automatic) == 1 and cluster == automatic[0]
            made.append(self._put(Link.between(
                key, candidate, state=LINKED if linked else CANDIDATE, rule="DEMOGRAPHIC_MATCH",
                band="AUTOMATIC" if linked else "REVIEW", recorded_at=now,
                match_weight=round(score.match_weight, 3), agreed_fields=score.agreed,
                local_authority_code=la, event_id=event_id)))  # fmt: skip
        return made


def _same(key: str) -> str:
    return key
