"""Fellegi-Sunter scoring of two records' demographics.

Each field is compared at a few levels (exact, close, different; null when either record
lacks it). A level's weight is ``log2(m / u)``: m the probability of that level between two
records of the same child, u between two records of different children. A pair's match
weight is the prior weight (``log2`` of the odds that two records match before looking)
plus the weights of its levels. The m and u values are estimated by expectation
maximisation with Splink on the DuckDB backend (``python bench/identity.py --train``) and
kept in ``model.json`` next to this module; scoring them here costs microseconds a pair,
which a per-event lookup needs (Splink scores in batches through SQL).

Households defeat the independence this assumes: twins agree on everything but the given
name, siblings on everything but the given name and the date of birth (and a nickname or a
typo can make two siblings' names agree). So an automatic link also needs both the given
names and the dates of birth to agree (:meth:`MatchModel.may_link_automatically`); a pair
that clears the threshold without them is queued for a person.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rapidfuzz.distance import JaroWinkler

from consent.identity.demographics import Demographics

MODEL_PATH = Path(__file__).resolve().parent / "model.json"
#: The smallest probability a level is given: a level that training never saw (a true match
#: whose school differs, in a synthetic population where nobody moved school) is rare, not
#: impossible, and must not outweigh every other field.
FLOOR = 1e-3
#: Jaro-Winkler similarity from which two names are "close" (a typo, a transposition).
CLOSE = 0.9
NULL = -1


def _names(a: str | None, b: str | None, canonical: tuple[str | None, str | None]) -> int:
    if not a or not b:
        return NULL
    if a == b or (canonical[0] is not None and canonical[0] == canonical[1]):
        return 0
    return 1 if JaroWinkler.similarity(a, b) >= CLOSE else 2


def _given(x: Demographics, y: Demographics) -> int:
    return _names(x.given_name, y.given_name, (x.given_canonical, y.given_canonical))


def _family(x: Demographics, y: Demographics) -> int:
    return _names(x.family_name, y.family_name, (None, None))


def _born(x: Demographics, y: Demographics) -> int:
    a, b = x.date_of_birth, y.date_of_birth
    if a is None or b is None:
        return NULL
    if a == b:
        return 0
    if (a.year, a.month, a.day) == (b.year, b.day, b.month):
        return 1  # day and month swapped
    return 2 if sum(p != q for p, q in zip(_parts(a), _parts(b), strict=True)) == 1 else 3


def _parts(day: date) -> tuple[int, int, int]:
    return day.year, day.month, day.day


def _postcode(x: Demographics, y: Demographics) -> int:
    if not x.postcode or not y.postcode:
        return NULL
    if x.postcode == y.postcode:
        return 0
    return 1 if x.outward_code == y.outward_code else 2


def _school(x: Demographics, y: Demographics) -> int:
    if not x.school_urn or not y.school_urn:
        return NULL
    return 0 if x.school_urn == y.school_urn else 1


#: Each compared field, its levels in order (the last is "different") and how a pair's level is found.
COMPARISONS: dict[str, tuple[tuple[str, ...], Callable[[Demographics, Demographics], int]]] = {
    "given_name": (("exact or nickname", "jaro-winkler >= 0.9", "different"), _given),
    "family_name": (("exact", "jaro-winkler >= 0.9", "different"), _family),
    "date_of_birth": (("exact", "day and month swapped", "one part differs", "different"), _born),
    "postcode": (("exact", "same district", "different"), _postcode),
    "school_urn": (("exact", "different"), _school),
}
#: Levels counted as "agreed" in what an operator reviews (all but the last, "different").
AGREES = {name: len(levels) - 1 for name, (levels, _) in COMPARISONS.items()}


@dataclass(frozen=True, slots=True)
class Score:
    """A pair's match weight, and the fields that agreed (names only, for review and audit)."""

    match_weight: float
    agreed: tuple[str, ...]

    @property
    def probability(self) -> float:
        """The match probability the weight stands for."""
        return 1.0 / (1.0 + math.pow(2.0, -self.match_weight))


class MatchModel:
    """Level weights from m and u probabilities, and the prior.

    Args:
        prior: the probability that two records compared match, before looking at them.
        m: per field, the probability of each level between records of one child.
        u: per field, the probability of each level between records of different children.
    """

    __slots__ = ("m", "prior", "prior_weight", "u", "weights")

    def __init__(self, prior: float, m: Mapping[str, list[float]], u: Mapping[str, list[float]]) -> None:
        self.prior, self.m, self.u = prior, dict(m), dict(u)
        self.prior_weight = math.log2(prior / (1.0 - prior))
        self.weights = {
            name: tuple(
                math.log2(max(mi, FLOOR) / max(ui, 1e-6)) for mi, ui in zip(m[name], u[name], strict=True)
            )
            for name in COMPARISONS
        }

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> MatchModel:
        """The model kept in ``model.json``."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(float(data["prior"]), data["m"], data["u"])

    def to_json(self, **about: Any) -> str:
        """The model as ``model.json`` holds it."""
        return json.dumps({**about, "prior": self.prior, "m": self.m, "u": self.u}, indent=2) + "\n"

    def score(self, x: Demographics, y: Demographics) -> Score:
        """The match weight of two records, and which fields agreed."""
        total, agreed = self.prior_weight, []
        for name, (_, level_of) in COMPARISONS.items():
            level = level_of(x, y)
            if level == NULL:
                continue
            total += self.weights[name][level]
            if level < AGREES[name]:
                agreed.append(name)
        return Score(total, tuple(agreed))

    @staticmethod
    def may_link_automatically(score: Score) -> bool:
        """Whether a score above the threshold may link without a person: the given names and the
        dates of birth must agree (twins and siblings agree on everything else)."""
        return "given_name" in score.agreed and "date_of_birth" in score.agreed
