"""Synthetic safeguarding events for a population of invented children (``sgb simulate``).

Pure and repeatable: a :class:`Population` and a :class:`Simulator` built with the same seed
produce the same children and the same events, with no Kafka in the room. The same child
(NHS number, name, date of birth, school, GP practice, local authority) appears in health,
police, school and local-authority events alike, so the filter's per-child state and every
audience's routing can be exercised end to end.

Everything is invented: NHS numbers come from the 999 test range, UPNs are valid but made
up, organisation names end in "(synthetic)" and every narrative starts ``[Synthetic]``.

>>> population = Population(20, seed=1)
>>> events = list(Simulator(population, seed=1).events(100))
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sgb.simulate.data import DEFAULT_MIX, DEFAULT_START, EVENT_AGENCY, EVENT_TYPES
from sgb.simulate.details import BUILDERS_HEALTH_POLICE
from sgb.simulate.details_education import BUILDERS_EDUCATION
from sgb.simulate.details_la import BUILDERS_LA
from sgb.simulate.population import (
    MAX_CHILDREN,
    Population,
    SimulationError,
    SyntheticAdult,
    SyntheticChild,
    seeded,
)
from sgb.simulate.scene import Builder, Draft, Scene

__all__ = [
    "DEFAULT_MIX",
    "EVENT_AGENCY",
    "EVENT_TYPES",
    "MAX_CHILDREN",
    "Population",
    "SimulationError",
    "Simulator",
    "SyntheticAdult",
    "SyntheticChild",
]

BUILDERS: dict[str, Builder] = {**BUILDERS_HEALTH_POLICE, **BUILDERS_EDUCATION, **BUILDERS_LA}
SCHOOL_TYPES = ("SCHOOL_SAFEGUARDING_CONCERN", "ATTENDANCE_ALERT", "CHILD_MISSING_EDUCATION")
_SYSTEM = "sgb-simulate"


class Simulator:
    """Events about a population's children, in time order, repeatable for a seed.

    Args:
        population: the children the events are about.
        seed: makes the events repeatable.
        start: when the simulated period starts; events follow about ``mean_gap`` apart.
        mean_gap: the average time between two events.
    """

    def __init__(
        self,
        population: Population,
        seed: int | str = 0,
        *,
        start: datetime = DEFAULT_START,
        mean_gap: timedelta = timedelta(minutes=7),
    ) -> None:
        if start.tzinfo is None:
            msg = "The start of the simulated period needs a time zone."
            raise SimulationError(msg)
        if mean_gap <= timedelta(0):
            msg = "The mean gap between events must be positive."
            raise SimulationError(msg)
        self.population = population
        self.seed = seed
        self.start = start.replace(microsecond=0)
        self.mean_gap = mean_gap
        self._rng = seeded("events", seed)
        self._consent_rng = seeded("consents", seed)
        self._clock = self.start
        self._consent_clock = self.start - timedelta(days=30)
        self._serial = 0
        # What is open, by child index: what the opening event kept.
        self._open: dict[str, dict[int, Any]] = {name: {} for name in self._PHASES}
        self._consents: dict[tuple[int, str], str] = {}
        children = population.children
        self._pools = {
            "all": list(children),
            "school": [c for c in children if c.school_urn],
            "compulsory": [c for c in children if c.school_urn and 5 <= c.age_on(population.today) <= 16],
            "older": [c for c in children if c.age_on(population.today) >= 10],
        }

    # -- choosing what happens -----------------------------------------------------------
    def weights(
        self, types: Sequence[str] | None = None, mix: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """The relative weight of each type that will be generated; raises SimulationError."""
        chosen = list(dict.fromkeys(types)) if types is not None else list(EVENT_TYPES)
        unknown = [t for t in [*chosen, *(mix or {})] if t not in EVENT_AGENCY]
        if unknown:
            msg = f"Unknown event type {unknown[0]!r}; the types are {', '.join(EVENT_TYPES)}."
            raise SimulationError(msg)
        if not chosen:
            msg = "Choose at least one event type."
            raise SimulationError(msg)
        merged = {**DEFAULT_MIX, **(mix or {})}
        for name, weight in merged.items():
            if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                msg = f"The mix weight of {name} must be a number of 0 or more."
                raise SimulationError(msg)
        if not self._pools["school"]:
            impossible = [t for t in chosen if t in SCHOOL_TYPES]
            if types is not None and impossible:
                msg = f"No child in the population is at school, so {impossible[0]} cannot be simulated."
                raise SimulationError(msg)
            chosen = [t for t in chosen if t not in SCHOOL_TYPES]
        weights = {t: float(merged[t]) for t in chosen if merged[t] > 0}
        if not weights:
            msg = "Every chosen event type has weight 0 in the mix."
            raise SimulationError(msg)
        return weights

    def events(
        self, count: int, types: Sequence[str] | None = None, mix: Mapping[str, float] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield ``count`` complete SafeguardingEvent records in the shape fastavro writes.

        Args:
            count: how many events.
            types: only these event types (default: all fourteen).
            mix: relative weights by event type, overriding the defaults for the types named.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            msg = "The number of events must be a whole number of 0 or more."
            raise SimulationError(msg)
        weights = self.weights(types, mix)
        return self._events(count, list(weights), list(weights.values()))

    def _events(self, count: int, names: list[str], weights: list[float]) -> Iterator[dict[str, Any]]:
        for _ in range(count):
            yield self.event(self._rng.choices(names, weights=weights)[0])

    def event(self, event_type: str) -> dict[str, Any]:
        """One event of ``event_type``, the next in time."""
        if event_type not in BUILDERS:
            msg = f"Unknown event type {event_type!r}; the types are {', '.join(EVENT_TYPES)}."
            raise SimulationError(msg)
        r = self._rng
        self._clock += timedelta(seconds=max(1, round(r.expovariate(1 / self.mean_gap.total_seconds()))))
        at = self._clock
        scene = self._scene(event_type, at)
        draft = BUILDERS[event_type](scene)
        opened = self._open.get(event_type)
        if opened is not None and draft.keep is not None:
            opened[scene.child.index] = draft.keep
        return self._envelope(event_type, scene, draft)

    def _scene(self, event_type: str, at: datetime) -> Scene:
        r, pools = self._rng, self._pools
        cpp, lac = self._open["CHILD_PROTECTION_PLAN"], self._open["LOOKED_AFTER_STATUS"]
        phase, opened = None, None
        if event_type in self._open:
            pool = (
                (pools["older"] or pools["school"] or pools["all"])
                if event_type == "MISSING_EPISODE"
                else pools["all"]
            )
            child, phase, opened = self._lifecycle(event_type, pool)
        elif event_type == "CHILD_MISSING_EDUCATION":
            child = r.choice(pools["compulsory"] or pools["school"])
        elif event_type in SCHOOL_TYPES:
            child = r.choice(pools["school"])
        elif event_type == "EXPLOITATION_CONCERN":
            child = r.choice(pools["older"] or pools["school"] or pools["all"])
        elif event_type == "EMERGENCY_ATTENDANCE" and (cpp or lac) and r.random() < 0.25:
            flagged = list(dict.fromkeys([*cpp, *lac]))
            child = self.population[r.choice(flagged)]
        else:
            child = r.choice(pools["all"])
        index = child.index
        return Scene(
            r,
            child,
            self.population,
            at,
            phase,
            opened,
            flagged=index in cpp or index in lac,
            looked_after=index in lac,
        )

    _PHASES = {
        "CHILD_PROTECTION_PLAN": ("STARTED", "ENDED"),
        "LOOKED_AFTER_STATUS": ("STARTED", "ENDED"),
        "FAMILY_HELP_CASE": ("OPENED", "CLOSED"),
        "MISSING_EPISODE": ("REPORTED", "RETURNED"),
    }
    _END_BIAS = {
        "CHILD_PROTECTION_PLAN": 0.35,
        "LOOKED_AFTER_STATUS": 0.3,
        "FAMILY_HELP_CASE": 0.4,
        "MISSING_EPISODE": 0.7,
    }

    def _lifecycle(self, event_type: str, pool: list[SyntheticChild]) -> tuple[SyntheticChild, str, Any]:
        """Open something for a child, or close something open: never close what was not opened."""
        r, active = self._rng, self._open[event_type]
        begin, end = self._PHASES[event_type]
        candidates = [c for c in pool if c.index not in active]
        if active and (not candidates or r.random() < self._END_BIAS[event_type]):
            index = r.choice(list(active))
            return self.population[index], end, active.pop(index)
        return r.choice(candidates), begin, None

    # -- the envelope ----------------------------------------------------------------------
    def _envelope(self, event_type: str, scene: Scene, draft: Draft) -> dict[str, Any]:
        r, child, agency = self._rng, scene.child, EVENT_AGENCY[event_type]
        self._serial += 1
        delay = (
            r.randint(2, 90)
            if agency in ("HEALTH", "EDUCATION")
            else r.randint(15, 240)
            if agency == "POLICE"
            else r.randint(30, 1440)
        )
        return {
            "event_id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
            "event_type": event_type,
            "occurred_at": scene.at,
            "recorded_at": scene.at + timedelta(minutes=delay),
            "source": self._source(agency, child, draft),
            "risk": draft.risk,
            "child": child.record(confidential=agency in ("POLICE", "LOCAL_AUTHORITY")),
            "related_people": draft.related,
            "details": draft.details,
            "narrative": draft.narrative,
            "withheld_fields": [],
            "generalised_fields": {},
            "correction": None,
            "merges": None,
            "sealed_values": None,
        }

    def _source(self, agency: str, child: SyntheticChild, draft: Draft) -> dict[str, Any]:
        r, pop = self._rng, self.population
        if agency == "POLICE":
            code, name = pop.force_for(child)
            team, mailbox, ref = "Public Protection Unit", "ppu", f"CAD-{r.randrange(1000, 9999)}"
        elif agency == "EDUCATION":
            code = child.school_urn or ""
            name = pop.school_name(code)
            team, mailbox, ref = "Designated safeguarding lead", "dsl", None
        elif agency == "HEALTH":
            code, name = draft.organisation or (child.gp_practice_ods, pop.gp_name(child.gp_practice_ods))
            team, mailbox, ref = "Safeguarding team", "safeguarding", None
        else:
            code = child.local_authority_code
            name = f"{pop.la_name(code)} children's services"
            team, mailbox, ref = "Children's services front door", "frontdoor", None
        slug = name.replace(" (synthetic)", "")
        return {
            "agency": agency,
            "organisation": code,
            "organisation_name": name,
            "system": _SYSTEM,
            "record_id": f"SIM-{agency[:3]}-{self._serial:08d}",
            "contact": {
                "team": team,
                "phone": f"020 7946 0{r.randrange(1000):03d}",
                "email": f"{mailbox}@{_slug(slug)}.example.org",
                "reference": ref,
            },
        }

    # -- consent -------------------------------------------------------------------------
    def consent_records(self, count: int) -> Iterator[dict[str, Any]]:
        """Yield ``count`` ConsentRecord records for family help, in the order they were recorded.

        A child's consent is withdrawn only after it was given.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            msg = "The number of consent records must be a whole number of 0 or more."
            raise SimulationError(msg)
        return self._consent_records(count)

    def _consent_records(self, count: int) -> Iterator[dict[str, Any]]:
        r = self._consent_rng
        for _ in range(count):
            self._consent_clock += timedelta(minutes=r.randint(5, 600))
            child = r.choice(self.population.children)
            audience = r.choices(("FAMILY_HELP", "ALL"), weights=(70, 30))[0]
            previous = self._consents.get((child.index, audience))
            if previous == "GIVEN":
                state = r.choices(("GIVEN", "WITHDRAWN"), weights=(40, 60))[0]
            else:
                state = r.choices(("GIVEN", "REFUSED", "NOT_SOUGHT"), weights=(55, 20, 25))[0]
            self._consents[(child.index, audience)] = state
            older = child.age_on(self._consent_clock.date()) >= 13
            la_name = self.population.la_name(child.local_authority_code)
            given_by = (
                None
                if state == "NOT_SOUGHT"
                else r.choices(("PARENT", "CHILD", "OTHER"), weights=(70, 25 if older else 0, 5))[0]
            )
            yield {
                "consent_id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
                "nhs_number": child.nhs_number,
                "la_child_id": child.la_child_id,
                "local_authority_code": child.local_authority_code,
                "upn": None,  # the local authority records consent under its own id and the NHS number
                "audience": audience,
                "purpose": "FAMILY_HELP",
                "state": state,
                "given_by": given_by,
                "recorded_at": self._consent_clock,
                "recorded_by": f"Family help team, {la_name} (synthetic)",
            }


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower().replace(" ", "-") if ch.isalnum() or ch == "-").strip("-")
