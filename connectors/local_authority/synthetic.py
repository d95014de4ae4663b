"""Synthetic local-authority returns in the DfE shapes, for tests, benchmarks and the demo.

Invented children only: ids ``C<number>``, UPNs from :func:`schemas.identifiers.synthetic_upn`,
NHS numbers (cross-reference files) from the 999 test range.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from schemas.identifiers import synthetic_nhs_number, synthetic_upn


@dataclass
class CinChild:
    """One child of a synthetic CIN census return (dates as the file will show them)."""

    la_child_id: str
    upn: str
    birth: str
    referral: str
    nfa: bool = False
    s47: str | None = None
    cpp_start: str | None = None
    cpp_end: str | None = None
    abuse: str = "NEG"
    assessment: str | None = None


def cin_children(n: int, rng: random.Random, la: str = "202") -> Iterator[CinChild]:
    """``n`` varied children: some referrals end NFA, some have a section 47 and a plan."""
    for i in range(n):
        born = date(2008, 1, 1) + timedelta(days=rng.randrange(5000))
        referred = date(2023, 4, 1) + timedelta(days=rng.randrange(300))
        kind = i % 4
        s47 = (referred + timedelta(days=3)).isoformat() if kind >= 2 else None
        cpp = (referred + timedelta(days=20)).isoformat() if kind == 3 else None
        yield CinChild(
            f"C{i:07d}",
            synthetic_upn(rng, la),
            born.isoformat(),
            referred.isoformat(),
            nfa=kind == 0,
            s47=s47,
            cpp_start=cpp,
        )


def _el(name: str, value: str | None) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value is not None else ""


def child_xml(c: CinChild) -> str:
    """One ``Child`` element."""
    modules = ""
    if c.assessment:
        modules += f"<Assessments>{_el('AssessmentActualStartDate', c.assessment)}</Assessments>"
    if c.s47:
        modules += (
            f"<Section47>{_el('S47ActualStartDate', c.s47)}{_el('ICPCnotRequired', 'false')}</Section47>"
        )
    if c.cpp_start:
        modules += (
            f"<ChildProtectionPlans>{_el('CPPstartDate', c.cpp_start)}{_el('CPPendDate', c.cpp_end)}"
            f"{_el('InitialCategoryOfAbuse', c.abuse)}{_el('LatestCategoryOfAbuse', c.abuse)}"
            f"{_el('NumberOfPreviousCPP', '0')}</ChildProtectionPlans>"
        )
    return (
        "<Child><ChildIdentifiers>"
        f"{_el('LAchildID', c.la_child_id)}{_el('UPN', c.upn)}"
        f"{_el('PersonBirthDate', c.birth)}{_el('Sex', 'U')}"
        "</ChildIdentifiers><ChildCharacteristics><Ethnicity>NOBT</Ethnicity></ChildCharacteristics>"
        f"<CINdetails>{_el('CINreferralDate', c.referral)}{_el('ReferralSource', '2A')}"
        f"{_el('PrimaryNeedCode', 'N1')}{_el('ReferralNFA', 'true' if c.nfa else 'false')}"
        f"{modules}</CINdetails></Child>\n"
    )


def write_cin(path: Path, children: Iterable[CinChild], la: str = "202", year: str | None = "2024") -> Path:
    """A CIN census return (``Message/Header`` and ``Message/Children``), written as it goes;
    ``year`` None leaves out the collection year (a return that does not say its period)."""
    period = f"<Year>{year}</Year><ReferenceDate>{year}-03-31</ReferenceDate>" if year else ""
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            '<?xml version="1.0" encoding="utf-8"?>\n<Message><Header><CollectionDetails>'
            f"<Collection>CIN</Collection>{period}"
            f"</CollectionDetails><Source><SourceLevel>L</SourceLevel><LEA>{la}</LEA>"
            "<SoftwareCode>Synthetic</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>"
            "<DateTime>2024-04-02T09:00:00</DateTime></Source></Header>\n<Children>\n"
        )
        for child in children:
            fh.write(child_xml(child))
        fh.write("</Children></Message>\n")
    return path


def write_xref(path: Path, ids: Iterable[str], rng: random.Random) -> dict[str, str]:
    """A cross-reference file ``LAchildID,NHSnumber``; returns the mapping it wrote."""
    mapping = {i: synthetic_nhs_number(rng) for i in ids}
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["LAchildID", "NHSnumber"])
        out.writerows(mapping.items())
    return mapping


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict[str, str]]) -> Path:
    """A CSV with the given header (SSDA903 tables, case-system exports)."""
    columns = list(columns)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, columns, extrasaction="raise")
        out.writeheader()
        for row in rows:
            out.writerow({c: row.get(c, "") for c in columns})
    return path
