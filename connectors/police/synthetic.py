"""Synthetic police exports in the shapes the shipped mapping files read, for tests, benchmarks
and demonstrations. Invented people only; NHS numbers come from the 999 test range.

``bad`` selects rows that are deliberately wrong (in turn: an NHS number whose check digit
does not match, a date in the wrong format, a risk the values table does not list), each of
which the mapping must reject with a reason.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.identifiers import synthetic_nhs_number

GIVEN = ("Testy", "Sample", "Dummy", "Mock", "Placeholder", "Fixture")
FAMILY = ("Childe", "Exampleson", "Madeup", "Fictional", "Synthetica", "Notreal")
LA_SCHOOLS = (("202", "100000"), ("203", "100001"), ("213", "100002"))
BAD_KINDS = ("nhs_number", "date", "risk")

DOMESTIC_ABUSE_COLUMNS = (
    "IncidentRef",
    "IncidentDateTime",
    "RecordedDateTime",
    "RiskToChild",
    "ChildPersonRef",
    "ChildNHSNumber",
    "ChildForename",
    "ChildSurname",
    "ChildDOB",
    "AddressLine1",
    "Town",
    "Postcode",
    "SchoolURN",
    "GPPractice",
    "LACode",
    "SuspectRelationship",
    "SuspectForename",
    "SuspectSurname",
    "ChildPresent",
    "ChildInjured",
    "Offences",
    "DASHRisk",
    "ArrestMade",
    "ProtectiveMeasures",
    "OfficerSummary",
    "Outcome",
)


def bad_nhs_number(rng: random.Random) -> str:
    """A 999-range number whose check digit is wrong."""
    good = synthetic_nhs_number(rng)
    return good[:9] + str((int(good[9]) + 1) % 10)


def domestic_abuse_rows(count: int, rng: random.Random, bad: Iterable[int] = ()) -> list[dict[str, str]]:
    """``count`` rows of a domestic abuse incident export; rows whose index is in ``bad`` are wrong."""
    bad_rows = sorted(set(bad))
    kinds = {index: BAD_KINDS[i % len(BAD_KINDS)] for i, index in enumerate(bad_rows)}
    base = datetime(2026, 11, 20, 18, 0)
    rows = []
    for i in range(count):
        at = base + timedelta(minutes=7 * i)
        la, urn = LA_SCHOOLS[i % len(LA_SCHOOLS)]
        born = datetime(2012 + i % 10, 1 + i % 12, 1 + i % 28)
        row = {
            "IncidentRef": f"INC-{i + 1:07d}",
            "IncidentDateTime": at.strftime("%d/%m/%Y %H:%M"),
            "RecordedDateTime": (at + timedelta(minutes=50)).strftime("%d/%m/%Y %H:%M"),
            "RiskToChild": ("High", "Medium", "Low")[i % 3],
            "ChildPersonRef": f"SYN-P{i + 1:07d}",
            "ChildNHSNumber": synthetic_nhs_number(rng),
            "ChildForename": GIVEN[i % len(GIVEN)],
            "ChildSurname": FAMILY[i % len(FAMILY)],
            "ChildDOB": born.strftime("%d/%m/%Y"),
            "AddressLine1": f"{1 + i % 90} Synthetic Row",
            "Town": "Testford",
            "Postcode": "ZZ99 3WZ",
            "SchoolURN": urn,
            "GPPractice": "F83004",
            "LACode": la,
            "SuspectRelationship": "mother's partner",
            "SuspectForename": "Adult",
            "SuspectSurname": "Invented",
            "ChildPresent": "Y" if i % 4 else "N",
            "ChildInjured": "N",
            "Offences": "Common assault;Criminal damage",
            "DASHRisk": ("Standard", "Medium", "High")[i % 3],
            "ArrestMade": "Y" if i % 2 else "N",
            "ProtectiveMeasures": "DVPN issued" if i % 5 == 0 else "",
            "OfficerSummary": "Synthetic narrative for testing only.",
        }
        kind = kinds.get(i)
        if kind == "nhs_number":  # the only identifier is bad: nothing valid keys the child
            row["ChildNHSNumber"] = bad_nhs_number(rng)
            row["ChildPersonRef"] = ""
        elif kind == "date":
            row["IncidentDateTime"] = at.strftime("%Y-%m-%dT%H:%M")
        elif kind == "risk":
            row["RiskToChild"] = "Unknown grade"
        rows.append(row)
    return rows


MISSING_EPISODE_COLUMNS = (
    "EpisodeRef",
    "Status",
    "LastSeen",
    "ReportedAt",
    "ReturnedAt",
    "RiskGrading",
    "MissingFrom",
    "EpisodesLast12Months",
    "FoundLocation",
    "HarmWhileMissing",
    "ExploitationSuspected",
    "ReturnInterviewOffered",
    "ReturnInterviewCompleted",
    "Circumstances",
    "PersonRef",
    "NHSNumber",
    "Forename",
    "Surname",
    "DateOfBirth",
    "SchoolURN",
    "LACode",
)


def missing_episode_rows(count: int, rng: random.Random, bad: Iterable[int] = ()) -> list[dict[str, str]]:
    """``count`` rows of a missing persons export (alternately reported and returned)."""
    bad_rows = set(bad)
    rows = []
    base = datetime(2026, 11, 18, 16, 30)
    for i in range(count):
        seen = base + timedelta(hours=i)
        returned = i % 2 == 1
        la, urn = LA_SCHOOLS[i % len(LA_SCHOOLS)]
        rows.append(
            {
                "EpisodeRef": f"MISS-{i + 1:06d}",
                "Status": "Returned" if returned else "Missing",
                "LastSeen": seen.strftime("%Y-%m-%d %H:%M"),
                "ReportedAt": (seen + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"),
                "ReturnedAt": (seen + timedelta(hours=20)).strftime("%Y-%m-%d %H:%M") if returned else "",
                "RiskGrading": ("High", "Medium", "Low", "No apparent risk")[i % 4],
                "MissingFrom": ("Home", "Care placement", "School", "Other")[i % 4],
                "EpisodesLast12Months": str(1 + i % 6),
                "FoundLocation": "Town centre" if returned else "",
                "HarmWhileMissing": "N" if returned else "",
                "ExploitationSuspected": "Y" if i % 3 == 0 else "N",
                "ReturnInterviewOffered": "Y" if returned else "",
                "ReturnInterviewCompleted": "",
                "Circumstances": "Synthetic circumstances for testing only.",
                "PersonRef": f"SYN-M{i + 1:06d}",
                "NHSNumber": bad_nhs_number(rng) if i in bad_rows else synthetic_nhs_number(rng),
                "Forename": GIVEN[i % len(GIVEN)],
                "Surname": FAMILY[i % len(FAMILY)],
                "DateOfBirth": f"{2010 + i % 8}-0{1 + i % 9}-1{i % 10}",
                "SchoolURN": urn,
                "LACode": la,
            }
        )
    return rows


def exploitation_concerns(count: int, rng: random.Random, bad: Iterable[int] = ()) -> list[dict[str, Any]]:
    """``count`` records of an intelligence system's JSON export of exploitation concerns."""
    bad_rows = set(bad)
    out = []
    base = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    for i in range(count):
        raised = base + timedelta(hours=3 * i)
        la, urn = LA_SCHOOLS[i % len(LA_SCHOOLS)]
        out.append(
            {
                "reference": f"EXP-{i + 1:06d}",
                "raisedAt": raised.isoformat(),
                "recordedAt": (raised + timedelta(hours=1)).isoformat(),
                "riskLevel": "unrated" if i in bad_rows else ("significant", "moderate", "emerging")[i % 3],
                "type": ("criminal", "sexual", "both")[i % 3],
                "countyLines": i % 2 == 0,
                "indicators": ["going missing", "multiple phones"] if i % 2 else ["older associates"],
                "childArrested": False,
                "nrm": {"made": i % 4 == 0, "date": "2026-11-01" if i % 4 == 0 else None},
                "operation": "Op Synthetic",
                "locations": ["A park (synthetic)"],
                "associate": {"forename": "Adult", "surname": "Invented", "relationship": "older associate"},
                "summary": "Synthetic concern summary for testing only.",
                "child": {
                    "personRef": f"SYN-X{i + 1:06d}",
                    "nhsNumber": synthetic_nhs_number(rng),
                    "forename": GIVEN[i % len(GIVEN)],
                    "surname": FAMILY[i % len(FAMILY)],
                    "dateOfBirth": f"{2009 + i % 6}-05-17",
                    "schoolUrn": urn,
                    "laCode": la,
                },
            }
        )
    return out


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict[str, str]]) -> Path:
    """Write rows as a CSV export with a header row."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, records: list[dict[str, Any]], member: str = "concerns") -> Path:
    """Write records as a JSON export document ``{"exportedAt": ..., member: [...]}``."""
    path.write_text(json.dumps({"exportedAt": "2026-11-23T06:00:00Z", member: records}), encoding="utf-8")
    return path
