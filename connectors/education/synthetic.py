"""Synthetic Common Transfer Files and concern payloads (invented pupils), for tests and benchmarks."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from schemas.identifiers import synthetic_upn


@dataclass
class CtfPupil:
    """One pupil: attendance this year, and where they were last on roll."""

    upn: str
    surname: str
    forename: str
    dob: str
    possible: int = 300
    authorised: int = 5
    unauthorised: int = 5
    year: str = "2024"
    leaving: str | None = None


def _el(name: str, value: str | None) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value is not None else ""


def write_ctf(
    path: Path,
    pupils: Iterable[CtfPupil],
    *,
    urn: str = "100000",
    lea: str = "202",
    estab: str = "2001",
    dest: tuple[str, str] = ("202", "2002"),
    sent: str = "2025-06-30T10:00:00",
) -> Path:
    """A CTF (``CTfile/Header`` and ``CTFpupilData/Pupil``)."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            '<?xml version="1.0" encoding="utf-8"?>\n<CTfile><Header><DocumentName>Common Transfer File'
            f"</DocumentName><CTFversion>24.0</CTFversion><DateTime>{sent}</DateTime>"
            "<DocumentQualifier>full</DocumentQualifier><SupplierID>Synthetic MIS</SupplierID>"
            f"<SourceSchool>{_el('LEA', lea)}{_el('Estab', estab)}{_el('URN', urn)}"
            f"{_el('SchoolName', 'Invented Primary School')}<AcademicYear>2024</AcademicYear></SourceSchool>"
            f"<DestSchool>{_el('LEA', dest[0])}{_el('Estab', dest[1])}</DestSchool>"
            "</Header>\n<CTFpupilData>\n"
        )
        for p in pupils:
            history = (
                f"<SchoolHistory><School>{_el('LEA', lea)}{_el('Estab', estab)}"
                f"{_el('LeavingDate', p.leaving)}"
                "</School></SchoolHistory>"
                if p.leaving
                else ""
            )
            fh.write(
                f"<Pupil>{_el('UPN', p.upn)}{_el('Surname', p.surname)}{_el('Forename', p.forename)}"
                f"{_el('DOB', p.dob)}{_el('Gender', 'F')}<Attendance><YearData>{_el('Year', p.year)}"
                f"{_el('SessionsPossible', str(p.possible))}{_el('SessionsAuthorised', str(p.authorised))}"
                f"{_el('SessionsUnauthorised', str(p.unauthorised))}</YearData></Attendance>"
                f"{history}</Pupil>\n"
            )
        fh.write("</CTFpupilData></CTfile>\n")
    return path


def pupil(rng: random.Random, n: int, **kw: Any) -> CtfPupil:
    """An invented pupil."""
    return CtfPupil(
        synthetic_upn(rng, "202"), f"Testfamily{n}", f"Pupil{n}", "2014-05-0" + str(1 + n % 9), **kw
    )


def concern_payload(rng: random.Random, n: int, **overrides: Any) -> dict[str, Any]:
    """A valid concern JSON body for the webhook."""
    body: dict[str, Any] = {
        "concern_id": f"CONC-{n}",
        "occurred_at": "2025-03-03T10:15:00+00:00",
        "risk": "NEEDS_SUPPORT",
        "child": {
            "upn": synthetic_upn(rng, "202"),
            "given_name": f"Pupil{n}",
            "family_name": "Testfamily",
            "date_of_birth": "2014-05-01",
            "local_authority_code": "202",
        },
        "recorded_by_role": "DESIGNATED_SAFEGUARDING_LEAD",
        "concern_categories": ["NEGLECT"],
        "actions_taken": ["RECORDED_AND_MONITORED"],
        "description": "Invented description for a synthetic test.",
        "contact": {"team": "DSL office"},
    }
    body.update(overrides)
    return body
