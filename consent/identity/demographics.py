"""The demographics a child is matched on, in normal form, and the blocks that find candidates.

Names, date of birth, postcode and school. They are personal data: kept sealed in the
filter's state store (:mod:`consent.filter.identity`), never logged, never on the link topic.
Blocking keys are what two records of one child are likely to share even when corrupted; a
new record is only scored against records sharing one, which keeps the cost per record
bounded whatever the population.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

#: Common English nicknames and short forms, to the name they stand for. Matching compares the
#: canonical form, so "Alfie" and "Alfred" agree.
NICKNAMES = {
    "alfie": "alfred", "alex": "alexander", "abby": "abigail", "bella": "isabella",
    "ben": "benjamin", "beth": "elizabeth", "bill": "william", "billy": "william",
    "bob": "robert", "bobby": "robert", "charlie": "charles", "chris": "christopher",
    "dan": "daniel", "danny": "daniel", "ellie": "eleanor", "evie": "eve",
    "freddie": "frederick", "freddy": "frederick", "harry": "henry", "izzy": "isabella",
    "jack": "john", "jake": "jacob", "jamie": "james", "jim": "james", "jimmy": "james",
    "jo": "joanna", "johnny": "john", "josh": "joshua", "kate": "katherine", "katie": "katherine",
    "liz": "elizabeth", "lizzie": "elizabeth", "maddie": "madison", "matt": "matthew",
    "mike": "michael", "millie": "amelia", "nick": "nicholas", "olly": "oliver",
    "ollie": "oliver", "rob": "robert", "sam": "samuel", "sophie": "sophia", "tom": "thomas",
    "tommy": "thomas", "will": "william", "zac": "zachary", "zach": "zachary",
}  # fmt: skip

_LETTERS = re.compile(r"[^a-z]")
_POSTCODE = re.compile(r"[^A-Z0-9]")


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    text = _LETTERS.sub("", text)
    return text or None


def _postcode(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _POSTCODE.sub("", value.upper())
    return text if 5 <= len(text) <= 7 else None


@dataclass(frozen=True, slots=True)
class Demographics:
    """One record's demographics in normal form (lower-case letters; postcode without spaces)."""

    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    postcode: str | None = None
    school_urn: str | None = None

    @property
    def given_canonical(self) -> str | None:
        """The given name with a nickname replaced by the name it stands for."""
        return NICKNAMES.get(self.given_name, self.given_name) if self.given_name else None

    @property
    def outward_code(self) -> str | None:
        """The postcode's district (all but the last three characters)."""
        return self.postcode[:-3] if self.postcode else None

    def blocks(self) -> tuple[str, ...]:
        """The blocking keys: date of birth with the family name's initial; family name with
        the year of birth and the given name's initial; postcode with the given name's first
        two letters; given name with the year and the sum of day and month (which a swap keeps).
        Together they survive a swapped day and month, a typo in one name, or a move, but not
        all at once."""
        out = []
        dob, family, given = self.date_of_birth, self.family_name, self.given_canonical
        if dob and family:
            out.append(f"d|{dob.isoformat()}|{family[0]}")
            out.append(f"f|{family}|{dob.year}|{given[0] if given else ''}")
        if self.postcode and given:
            out.append(f"p|{self.postcode}|{given[:2]}")
        if dob and given:
            out.append(f"g|{given}|{dob.year}|{dob.month + dob.day}")
        return tuple(out)

    def dumps(self) -> str:
        """JSON text (sealed before it is stored)."""
        data = {  # in field order, as dataclasses.asdict gave it (the fingerprint is of this text)
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "postcode": self.postcode,
            "school_urn": self.school_urn,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> Demographics:
        """The inverse of :meth:`dumps`."""
        data = json.loads(text)
        born = data.get("date_of_birth")
        data["date_of_birth"] = date.fromisoformat(born) if born else None
        return cls(**data)


def demographics_of(child: Mapping[str, Any]) -> Demographics | None:
    """The demographics of an event's child, or None when too little is known to match on
    (a date of birth and at least one name are needed) or a field is sealed (encrypted)."""
    born = child.get("date_of_birth")
    if not isinstance(born, date):
        return None
    address = child.get("address") or {}
    demo = Demographics(
        given_name=_name(child.get("given_name")),
        family_name=_name(child.get("family_name")),
        date_of_birth=born,
        postcode=_postcode(address.get("postcode")) if isinstance(address, Mapping) else None,
        school_urn=child.get("school_urn") if isinstance(child.get("school_urn"), str) else None,
    )
    if demo.given_name is None and demo.family_name is None:
        return None
    return demo
