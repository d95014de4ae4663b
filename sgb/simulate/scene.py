"""``sgb simulate``: what every details builder shares.

A builder takes a :class:`Scene` (the child, the moment, the random source and, for types
with a lifecycle, which phase this is) and returns a :class:`Draft`: the details record,
the risk, the related people and a short narrative. Builders are pure: all randomness
comes from ``scene.rng``. The builders themselves are in :mod:`sgb.simulate.details`
(health and police), :mod:`sgb.simulate.details_education` (schools) and
:mod:`sgb.simulate.details_la` (local authorities).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sgb.simulate import data

if TYPE_CHECKING:
    from sgb.simulate.population import Population, SyntheticAdult, SyntheticChild

SYNTHETIC = "[Synthetic] "


@dataclass(slots=True)
class Scene:
    """What a builder needs to invent one event's details."""

    rng: random.Random
    child: SyntheticChild
    population: Population
    at: datetime
    #: For types with a lifecycle: STARTED/ENDED, OPENED/CLOSED or REPORTED/RETURNED.
    phase: str | None = None
    #: What the opening event kept (see :attr:`Draft.keep`), for a closing event.
    opened: Any = None
    #: The child has an active child protection plan or is looked after.
    flagged: bool = False
    looked_after: bool = False

    @property
    def age(self) -> int:
        return self.child.age_on(self.at.date())


@dataclass(slots=True)
class Draft:
    """One event's content, before the envelope is put round it."""

    details: dict[str, Any]
    risk: str
    narrative: str
    related: list[dict[str, Any]] = field(default_factory=list)
    #: The publishing organisation (code, name) when it is not the agency's default for the child.
    organisation: tuple[str, str] | None = None
    #: What an opening event keeps for its closing event (start date, category, ...).
    keep: Any = None


Builder = Callable[[Scene], Draft]


# ----------------------------------------------------------------------------------- helpers


def pick_risk(rng: random.Random, event_type: str) -> str:
    return rng.choices(data.RISKS, weights=data.RISK_WEIGHTS[event_type])[0]


def some(rng: random.Random, options: Sequence[Any], low: int, high: int) -> list[Any]:
    """Between ``low`` and ``high`` distinct options, in the order the options list them."""
    chosen = set(rng.sample(range(len(options)), min(len(options), rng.randint(low, high))))
    return [option for i, option in enumerate(options) if i in chosen]


def phone(rng: random.Random) -> str:
    """A number from Ofcom's range reserved for drama, so it reaches no one."""
    return f"020 7946 0{rng.randrange(1000):03d}"


def contact(
    rng: random.Random, team: str, mailbox: str, domain: str, reference: str | None = None
) -> dict[str, Any]:
    """An OrganisationContact with an invented phone number and an example.org address."""
    slug = "".join(ch for ch in domain.lower().replace(" ", "-") if ch.isalnum() or ch == "-")
    email = f"{mailbox}@{slug}.example.org"
    return {"team": team, "phone": phone(rng), "email": email, "reference": reference}


def la_contact(scene: Scene, team: str, mailbox: str, reference: str | None = None) -> dict[str, Any]:
    name = scene.population.la_name(scene.child.local_authority_code)
    return contact(scene.rng, team, mailbox, name, reference)


def adult_record(adult: SyntheticAdult, role: str, child: SyntheticChild) -> dict[str, Any]:
    """A RelatedPerson for one of the child's household."""
    return {
        "role": role,
        "relationship_to_child": adult.relationship,
        "given_name": adult.given_name,
        "family_name": adult.family_name,
        "date_of_birth": adult.date_of_birth,
        "address": child.address_record() if adult.lives_with_child else None,
    }


def parents(scene: Scene, role: str = "PARENT") -> list[dict[str, Any]]:
    """The child's household adults as related people."""
    return [adult_record(adult, role, scene.child) for adult in scene.child.household]


def stranger(
    rng: random.Random, role: str, relationship: str, on: date, youngest: int = 18, oldest: int = 35
) -> dict[str, Any]:
    """An invented adult outside the child's household."""
    first = rng.choice(data.MEN + data.WOMEN)
    born = on - timedelta(days=rng.randrange(youngest * 365 + 5, oldest * 365))
    return {
        "role": role,
        "relationship_to_child": relationship,
        "given_name": first,
        "family_name": rng.choice(data.FAMILY_NAMES),
        "date_of_birth": born,
        "address": None,
    }


def at_minutes(at: datetime, rng: random.Random, low: int, high: int) -> datetime:
    return at + timedelta(minutes=rng.randint(low, high))


# ------------------------------------------------------------------------------------- health
