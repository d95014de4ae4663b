"""``sgb simulate``: the invented children, their households and their organisations.

Pure and repeatable for a seed. NHS numbers come from the 999 test range, UPNs are valid but
made up, names are common names picked at random and streets are invented.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from broker.exceptions import SgbError
from schemas.child_keys import child_key
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import (
    synthetic_nhs_number,
    synthetic_upn,
    validate_gp_practice_code,
    validate_la_code,
    validate_school_urn,
)
from schemas.reference import all_local_authorities, local_authority
from sgb.simulate import data
from sgb.simulate.data import (
    DEFAULT_GP_PRACTICES,
    DEFAULT_LA_CODES,
    DEFAULT_POLICE_FORCE,
    DEFAULT_SCHOOLS,
    DEFAULT_TODAY,
)

__all__ = ["MAX_CHILDREN", "Population", "SimulationError", "SyntheticAdult", "SyntheticChild", "seeded"]

#: Children at most this many are allowed: the 999 test range holds about 900,000 NHS numbers.
MAX_CHILDREN = 100_000


class SimulationError(SgbError, ValueError):
    """The simulator was asked for something it cannot do; the message says what."""


@dataclass(frozen=True, slots=True)
class SyntheticAdult:
    """An invented adult in a child's household."""

    relationship: str
    given_name: str
    family_name: str
    date_of_birth: date
    lives_with_child: bool


@dataclass(frozen=True, slots=True)
class SyntheticChild:
    """One invented child, the same in every agency's events."""

    index: int
    nhs_number: str
    upn: str | None
    la_child_id: str
    police_person_reference: str
    given_name: str
    family_name: str
    date_of_birth: date
    ethnicity: str | None
    address: tuple[str, str | None, str, str]
    confidential_address: tuple[str, str | None, str, str] | None
    school_urn: str | None
    gp_practice_ods: str
    local_authority_code: str
    send_status: str | None
    household: tuple[SyntheticAdult, ...]

    @property
    def key(self) -> str:
        """The Kafka key of the child's events (``nhs:<NHS number>``)."""
        return str(child_key({"nhs_number": self.nhs_number}))

    def age_on(self, day: date) -> int:
        """Age in whole years on ``day``."""
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def address_record(self) -> dict[str, Any]:
        return _address(self.address)

    def record(self, *, confidential: bool = False) -> dict[str, Any]:
        """The Child record; the confidential address only when ``confidential`` (police and LA)."""
        return {
            "nhs_number": self.nhs_number,
            "upn": self.upn,
            "la_child_id": self.la_child_id,
            "police_person_reference": self.police_person_reference,
            # A hospital's own patient id: the simulated hospitals always know the NHS number.
            "local_patient_id": None,
            "local_patient_id_issuer": None,
            "linked_identifiers": None,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth,
            "ethnicity": self.ethnicity,
            "address": self.address_record(),
            "confidential_address": (
                _address(self.confidential_address) if confidential and self.confidential_address else None
            ),
            "school_urn": self.school_urn,
            "gp_practice_ods": self.gp_practice_ods,
            "local_authority_code": self.local_authority_code,
        }


def _address(lines: tuple[str, str | None, str, str]) -> dict[str, Any]:
    return {"line1": lines[0], "line2": lines[1], "town": lines[2], "postcode": lines[3]}


def seeded(kind: str, seed: int | str) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and processes.
    return random.Random(f"sgb-simulate:{kind}:{seed}")


def _assign(
    codes: Sequence[str] | Mapping[str, Sequence[str]], la_codes: Sequence[str], what: str
) -> dict[str, tuple[str, ...]]:
    """Organisations by local authority: a mapping as given, or a list dealt out in turn."""
    if isinstance(codes, Mapping):
        out = {la: tuple(codes.get(la, ())) for la in la_codes}
    else:
        out = {
            la: tuple(c for i, c in enumerate(codes) if i % len(la_codes) == n)
            for n, la in enumerate(la_codes)
        }
        for n, la in enumerate(la_codes):
            if not out[la] and codes:
                out[la] = (codes[n % len(codes)],)
    missing = [la for la, found in out.items() if not found]
    if missing:
        msg = f"No {what} is given for local authority {missing[0]}."
        raise SimulationError(msg)
    return out


class Population:
    """Invented children spread over the given local authorities, with their schools and GPs.

    Args:
        size: how many children (1 to 100,000).
        seed: makes the population repeatable.
        la_codes: DfE codes of the children's local authorities.
        schools: school URNs, dealt out to the authorities in turn, or a mapping from authority
            to URNs. Children under 4 have no school.
        gp_practices: GP practice ODS codes, likewise.
        police_force: the force that publishes police events (None: the force serving each
            child's authority, from the reference table).
        today: the day ages are counted on (every child is 0 to 17 years old then).
    """

    def __init__(
        self,
        size: int,
        seed: int | str = 0,
        la_codes: Sequence[str] = DEFAULT_LA_CODES,
        *,
        schools: Sequence[str] | Mapping[str, Sequence[str]] = DEFAULT_SCHOOLS,
        gp_practices: Sequence[str] | Mapping[str, Sequence[str]] = DEFAULT_GP_PRACTICES,
        police_force: str | None = DEFAULT_POLICE_FORCE,
        today: date = DEFAULT_TODAY,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_CHILDREN:
            msg = f"The population must have between 1 and {MAX_CHILDREN} children."
            raise SimulationError(msg)
        if isinstance(la_codes, str) or not la_codes:
            msg = "Give at least one local-authority code, as a list."
            raise SimulationError(msg)
        try:
            self.la_codes = tuple(dict.fromkeys(validate_la_code(code) for code in la_codes))
            school_map = _assign(_validated(schools, validate_school_urn), self.la_codes, "school")
            gps = _validated(gp_practices, validate_gp_practice_code)
            gp_map = _assign(gps, self.la_codes, "GP practice")
        except InvalidIdentifier as exc:
            raise SimulationError(str(exc)) from None
        unknown = [code for code in self.la_codes if local_authority(code) is None]
        if unknown:
            msg = f"Local-authority code {unknown[0]} is not in the reference table of English authorities."
            raise SimulationError(msg)
        if police_force is not None and not police_force.strip():
            msg = "The police force code must not be empty."
            raise SimulationError(msg)
        self.seed = seed
        self.today = today
        self.police_force = police_force
        self.schools_by_la = school_map
        self.gps_by_la = gp_map
        self._trusts = {la: data.TRUSTS[n % len(data.TRUSTS)] for n, la in enumerate(self.la_codes)}
        self.children: tuple[SyntheticChild, ...] = tuple(self._invent(size, seeded("population", seed)))

    # -- names of organisations ----------------------------------------------------------
    def la_name(self, code: str) -> str:
        found = local_authority(code)
        return found.name if found else f"Authority {code}"

    def school_name(self, urn: str) -> str:
        return data.SCHOOL_NAMES.get(urn, f"School {urn} (synthetic)")

    def gp_name(self, ods: str) -> str:
        return data.GP_NAMES.get(ods, f"Practice {ods} (synthetic)")

    def trust_for(self, la_code: str) -> tuple[str, str, str, str]:
        """(trust code, trust name, emergency site code, site name) serving the authority."""
        return self._trusts.get(la_code, data.TRUSTS[0])

    def force_for(self, child: SyntheticChild) -> tuple[str, str]:
        """(code, name) of the police force that publishes events about ``child``."""
        found = local_authority(child.local_authority_code)
        code = self.police_force or (found.police_force_code if found else "unknown")
        names = {la.police_force_code: la.police_force_name for la in all_local_authorities()}
        return code, names.get(code, f"{code.replace('-', ' ').title()} Police")

    def invent_address(self, rng: random.Random, la_code: str) -> dict[str, Any]:
        return _address(self._address_lines(rng, la_code))

    # -- the children --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self) -> Iterator[SyntheticChild]:
        return iter(self.children)

    def __getitem__(self, index: int) -> SyntheticChild:
        return self.children[index]

    def _address_lines(self, rng: random.Random, la_code: str) -> tuple[str, str | None, str, str]:
        town, outwards = data.POSTCODE_AREAS.get(la_code, (self.la_name(la_code), data.FALLBACK_OUTWARD))
        inward = f"{rng.randrange(10)}{rng.choice(data.INWARD_LETTERS)}{rng.choice(data.INWARD_LETTERS)}"
        postcode = f"{rng.choice(outwards)} {inward}"
        street = f"{rng.randint(1, 240)} {rng.choice(data.STREETS)}"
        if rng.random() < 0.35:
            return f"Flat {rng.randint(1, 40)}", street, town, postcode
        return street, None, town, postcode

    def _invent(self, size: int, rng: random.Random) -> Iterator[SyntheticChild]:
        seen_nhs: set[str] = set()
        seen_upn: set[str] = set()
        for index in range(size):
            # Every authority gets a child first; the rest are spread at random.
            la = self.la_codes[index] if index < len(self.la_codes) else rng.choice(self.la_codes)
            nhs = synthetic_nhs_number(rng)
            while nhs in seen_nhs:
                nhs = synthetic_nhs_number(rng)
            seen_nhs.add(nhs)
            born = self.today - timedelta(days=rng.randrange(0, 18 * 365))
            age = self.today.year - born.year - ((self.today.month, self.today.day) < (born.month, born.day))
            school = rng.choice(self.schools_by_la[la]) if age >= 4 else None
            upn = None
            if school:
                upn = synthetic_upn(rng, la)
                while upn in seen_upn:
                    upn = synthetic_upn(rng, la)
                seen_upn.add(upn)
            family = rng.choice(data.FAMILY_NAMES)
            given = rng.choice(data.GIRLS + data.BOYS)
            address = self._address_lines(rng, la)
            confidential = None
            if rng.random() < 0.06:
                refuge = self._address_lines(rng, la)
                confidential = (rng.choice(data.REFUGE_LINES), refuge[1] or refuge[0], refuge[2], refuge[3])
            yield SyntheticChild(
                index=index,
                nhs_number=nhs,
                upn=upn,
                la_child_id=f"{la}{index + 1:07d}",
                police_person_reference=f"SIMP{index + 1:07d}",
                given_name=given,
                family_name=family,
                date_of_birth=born,
                ethnicity=rng.choice(data.ETHNICITIES) if rng.random() < 0.9 else None,
                address=address,
                confidential_address=confidential,
                school_urn=school,
                gp_practice_ods=rng.choice(self.gps_by_la[la]),
                local_authority_code=la,
                send_status=(
                    rng.choices(("NO_SEN", "SEN_SUPPORT", "EHC_PLAN"), weights=(80, 14, 6))[0]
                    if school
                    else None
                ),
                household=self._household(rng, born, family),
            )

    @staticmethod
    def _household(rng: random.Random, born: date, family: str) -> tuple[SyntheticAdult, ...]:
        def adult(names: Sequence[str], relationship: str, surname: str, lives: bool) -> SyntheticAdult:
            older = rng.randint(18, 42) + (20 if relationship == "grandmother" else 0)
            return SyntheticAdult(
                relationship,
                rng.choice(names),
                surname,
                born - timedelta(days=older * 365 + rng.randrange(365)),
                lives,
            )

        first = adult(data.WOMEN, rng.choice(data.PERSON_RELATIONSHIPS_MOTHER), family, True)
        if rng.random() < 0.7:
            relationship = rng.choice(data.PERSON_RELATIONSHIPS_PARTNER)
            surname = family if relationship == "father" else rng.choice(data.FAMILY_NAMES)
            return first, adult(data.MEN, relationship, surname, rng.random() < 0.75)
        return (first,)


def _validated(codes: Sequence[str] | Mapping[str, Sequence[str]], check: Any) -> Any:
    if isinstance(codes, str):
        msg = "Give organisation codes as a list, not one string."
        raise SimulationError(msg)
    if isinstance(codes, Mapping):
        return {validate_la_code(la): tuple(check(c) for c in found) for la, found in codes.items()}
    if not codes:
        msg = "Give at least one school URN and one GP practice code."
        raise SimulationError(msg)
    return tuple(check(c) for c in codes)
