"""A synthetic population for the identity benchmark: children seen by all four agencies,
each agency's record corrupted the way real records are.

Per child: an NHS number (test range), an LA child id, a police person reference and a
UPN. Per agency, one record: health always has the NHS number; the LA has it for 95%
(CP-IS's target); police lack it for about 20%, schools for about 40%. Corruption: a typo
in a name, a nickname for the given name, day and month swapped, a moved address (another
postcode), a missing postcode; households share a surname and address (siblings), and some
are twins (one birthday too). Names are drawn Zipf-like from a few thousand, so common
names collide as they do in England. Everything is synthetic; nothing is a real person.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from consent.identity.demographics import NICKNAMES
from schemas.identifiers import synthetic_nhs_number, upn_check_letter

_COMMON_SURNAMES_TEXT = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson "
    "Evans Walker White Roberts Green Hall Wood Jackson Clarke Khan Ali Hussain Begum Ahmed "
    "Singh Lewis Harris Martin Cooper King Lee Baker Moore Hill Scott Morris Turner Ward "
)
COMMON_SURNAMES = _COMMON_SURNAMES_TEXT.split()
_COMMON_GIVEN_TEXT = (
    "Oliver George Noah Arthur Muhammad Leo Harry Oscar Archie Henry Theodore Freddie Jack "
    "Charlie Theo Alfie Jacob Thomas Finley Arlo William Lucas Roman Tommy Isaac Teddy "
    "Alexander Luca Edward James Joshua Albie Elijah Max Mason Reuben Samuel Ezra Logan "
    "Benjamin Daniel Olivia Amelia Isla Ava Ivy Freya Lily Florence Mia Willow Rosie Sophia "
    "Isabella Grace Daisy Sienna Poppy Elsie Emily Ella Evelyn Phoebe Sofia Evie Charlotte "
    "Harper Millie Matilda Maya Sophie Alice Emilia Isabelle Ruby Sienna Elizabeth Katherine "
    "Eleanor Abigail Madison Amara Zara Aisha Maryam "
)
COMMON_GIVEN = _COMMON_GIVEN_TEXT.split()
OUTWARD = [f"{a}{n}" for a in ("LS", "M", "B", "NW", "SE", "BD", "L", "S", "NE", "CF") for n in range(1, 30)]
LA_CODES = ("202", "203", "213", "330", "331", "332", "383", "384", "350", "351")


def _syllable_names(rng: random.Random, count: int, capitalise: bool = True) -> list[str]:
    parts = ["ar", "bel", "cor", "dan", "el", "far", "gan", "hol", "is", "jen", "kel", "lor", "mar", "nor",
             "ol", "per", "quin", "ros", "sel", "tor", "ul", "ven", "wy", "xan", "yor", "zel", "ash", "by"]  # fmt: skip
    out: set[str] = set()
    while len(out) < count:
        name = "".join(rng.choice(parts) for _ in range(rng.choice((2, 2, 3))))
        out.add(name.capitalize() if capitalise else name)
    return sorted(out)


def _zipf(names: list[str]) -> list[float]:
    """Zipf-like weights shifted so the commonest name is about 1.5% of people (Smith in England)."""
    return [1.0 / (rank + 10) for rank in range(len(names))]


@dataclass(slots=True)
class Child:
    index: int
    nhs: str
    given: str
    family: str
    born: date
    postcode: str
    school: str
    la: str


def population(size: int, seed: int) -> list[Child]:
    """``size`` children in households of one to four, some of them twins."""
    rng = random.Random(seed)
    surnames = COMMON_SURNAMES + _syllable_names(rng, 4000)
    given = COMMON_GIVEN + _syllable_names(rng, 1500)
    surname_w, given_w = _zipf(surnames), _zipf(given)
    used: set[str] = set()
    children: list[Child] = []
    while len(children) < size:
        family = rng.choices(surnames, surname_w)[0]
        inward = "".join(rng.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in range(2))
        postcode = f"{rng.choice(OUTWARD)} {rng.randrange(1, 10)}{inward}"
        la = rng.choice(LA_CODES)
        school = f"{rng.randrange(100000, 150000)}"
        size_of_household = rng.choices((1, 2, 3, 4), (35, 40, 18, 7))[0]
        born = date(2008, 1, 1) + timedelta(days=rng.randrange(18 * 365))
        for sibling in range(size_of_household):
            twin = sibling > 0 and rng.random() < 0.06  # about 3 in 100 births are twins
            if not twin:
                born = date(2008, 1, 1) + timedelta(days=rng.randrange(18 * 365))
            first = rng.choices(given, given_w)[0]
            nhs = synthetic_nhs_number(rng)
            while nhs in used:
                nhs = synthetic_nhs_number(rng)
            used.add(nhs)
            children.append(Child(len(children), nhs, first, family, born, postcode, school, la))
    return children[:size]


def _typo(rng: random.Random, name: str) -> str:
    i = rng.randrange(len(name))
    kind = rng.random()
    if kind < 0.4 and len(name) > 3:
        return name[:i] + name[i + 1 :]  # a letter dropped
    if kind < 0.7 and i < len(name) - 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]  # two letters swapped
    return name[:i] + rng.choice(string.ascii_lowercase) + name[i + 1 :]


_NICK_OF: dict[str, list[str]] = {}
for _nick, _full in NICKNAMES.items():
    _NICK_OF.setdefault(_full.capitalize(), []).append(_nick.capitalize())

#: Each agency: how often its record lacks the NHS number, and how it names the child.
AGENCIES = {"HEALTH": 0.0, "LOCAL_AUTHORITY": 0.05, "POLICE": 0.20, "EDUCATION": 0.40}


def records(children: list[Child], seed: int) -> list[tuple[int, dict[str, Any]]]:
    """One record per child per agency, (child index, the event's ``child`` record), shuffled."""
    rng = random.Random(seed + 1)
    out: list[tuple[int, dict[str, Any]]] = []
    for c in children:
        for agency, missing_nhs in AGENCIES.items():
            given, family, born, postcode = c.given, c.family, c.born, c.postcode
            if rng.random() < 0.03:
                given = _typo(rng, given)
            elif rng.random() < 0.10 and given in _NICK_OF:
                given = rng.choice(_NICK_OF[given])
            if rng.random() < 0.03:
                family = _typo(rng, family)
            if rng.random() < 0.02 and born.day <= 12:
                born = date(born.year, born.day, born.month)
            if rng.random() < 0.08:
                postcode = f"{rng.choice(OUTWARD)} {rng.randrange(1, 10)}AB"  # moved
            elif rng.random() < 0.05:
                postcode = None
            record: dict[str, Any] = {
                "nhs_number": None if rng.random() < missing_nhs else c.nhs,
                "given_name": given,
                "family_name": family,
                "date_of_birth": born,
                "address": {"postcode": postcode} if postcode else None,
                "local_authority_code": c.la,
                "school_urn": c.school
                if agency in ("EDUCATION", "LOCAL_AUTHORITY") and rng.random() < 0.8
                else None,
            }
            if agency == "LOCAL_AUTHORITY":
                record["la_child_id"] = f"LA{c.index:07d}"
            elif agency == "POLICE":
                record["police_person_reference"] = f"P{c.index:08d}"
            elif agency == "EDUCATION":
                body = f"{c.la}{c.index % 10000:04d}{c.index // 10000:02d}{c.index % 97:03d}"[:12]
                record["upn"] = upn_check_letter(body) + body
            out.append((c.index, record))
    rng.shuffle(out)
    return out
