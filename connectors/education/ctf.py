"""The DfE Common Transfer File (CTF) from a school's MIS, read as facts and mapped to events.

``CTfile/Header`` carries ``SourceSchool`` (``LEA``, ``Estab``, ``URN``, ``SchoolName``) and
``DestSchool`` (``LEA``, ``Estab``); ``CTFpupilData/Pupil`` carries ``UPN``, ``Surname``,
``Forename``, ``DOB``, ``Gender``, ``Attendance/YearData`` (``Year``, ``SessionsPossible``,
``SessionsAuthorised``, ``SessionsUnauthorised``) and ``SchoolHistory/School/LeavingDate``.

* The latest ``YearData`` of each pupil whose absence is at least 10% of possible sessions
  is an ``ATTENDANCE_ALERT`` (``PERSISTENT``; ``SEVERE`` from 50%); a level already
  published for that pupil, school and year is unchanged.
* A CTF whose destination is ``MMM``/``MMMM`` (the DfE code for "destination unknown", a
  file sent to the lost pupils database) is a ``CHILD_MISSING_EDUCATION`` for each pupil.

Streamed one ``Pupil`` at a time, DTDs and entities refused (:mod:`connectors.local_authority.xmlstream`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.exceptions import MappingError, NoEvent
from connectors.local_authority.xmlstream import check, child, children, count_tag, lazy_bytes, stream, text
from connectors.runtime.event_builder import build_event
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import Fact, clean, date_key, local_midnight, parse_date

TIMEZONE = ZoneInfo("Europe/London")
UNKNOWN_DESTINATION = "MMM"
PERSISTENT, SEVERE = 0.10, 0.50
PUPIL_FIELDS = ("UPN", "Surname", "Forename", "DOB", "Gender")
YEAR_FIELDS = ("Year", "LEA", "Estab", "SessionsPossible", "SessionsAuthorised", "SessionsUnauthorised")


def _int(value: str | None, element: str) -> int:
    try:
        number = int((value or "").strip())
    except ValueError:
        raise MappingError(f"{element} is not a whole number.") from None
    if number < 0:
        raise MappingError(f"{element} is negative.")
    return number


def alert_level(year: dict[str, str | None]) -> tuple[str | None, int, int, int]:
    """``(level or None, possible, missed, unauthorised)`` for a ``YearData``; raises MappingError."""
    possible = _int(year["SessionsPossible"], "SessionsPossible")
    authorised = _int(year["SessionsAuthorised"], "SessionsAuthorised")
    unauthorised = _int(year["SessionsUnauthorised"], "SessionsUnauthorised")
    missed = authorised + unauthorised
    if possible == 0:
        return None, possible, missed, unauthorised
    if missed > possible:
        raise MappingError(
            "SessionsAuthorised and SessionsUnauthorised add up to more than SessionsPossible."
        )
    share = missed / possible
    level = "SEVERE" if share >= SEVERE else "PERSISTENT" if share >= PERSISTENT else None
    return level, possible, missed, unauthorised


class CtfReader:
    """Reads CTF XML as :class:`Fact` records (``attendance`` and ``missing``)."""

    suffixes: tuple[str, ...] = (".xml",)
    content_type = "application/xml"

    def estimate(self, path: Path) -> int:
        return count_tag(path, b"Pupil")

    def check(self, ref: FileRef) -> None:
        """The whole file is well-formed XML (raises :class:`SourceFileError` otherwise)."""
        check(ref.path, ref.source, "Pupil", "Header")

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        school: dict[str, Any] = {}
        ordinal = 0
        for kind, elem, n in stream(ref.path, ref.source, "Pupil", "Header"):
            if kind == "header":
                source, dest = child(elem, "SourceSchool"), child(elem, "DestSchool")
                school = {
                    "LEA": text(source, "LEA"),
                    "Estab": text(source, "Estab"),
                    "URN": text(source, "URN"),
                    "SchoolName": text(source, "SchoolName"),
                    "DestLEA": text(dest, "LEA"),
                    "DateTime": text(elem, "DateTime"),
                }
                continue
            pupil = {name: text(elem, name) for name in PUPIL_FIELDS}
            where = f"{school.get('URN') or school.get('Estab')}|{(pupil['UPN'] or '').strip().upper()}"
            facts: list[tuple[str, Any]] = []
            if not school:
                facts.append(("", Malformed("The file has no Header before its pupils.")))
            years = children(child(elem, "Attendance"), "YearData")
            if school and years:
                facts += _attendance_facts(years, school, pupil)
            if school and (school["DestLEA"] or "").upper() == UNKNOWN_DESTINATION:
                leaving = [text(s, "LeavingDate") for s in children(child(elem, "SchoolHistory"), "School")]
                left = next((d for d in reversed(leaving) if d), None)
                facts.append(
                    (
                        "",
                        Fact(
                            "missing",
                            f"cme|{where}|{date_key(left)}",
                            {"school": school, "pupil": pupil, "left": left},
                        ),
                    )
                )
            raw = lazy_bytes(elem)
            for suffix, data in facts:
                yield SourceRecord(
                    ref.connector,
                    ref.source,
                    ref.file_id,
                    ordinal,
                    f"Pupil {n}{suffix}",
                    data,
                    content_type="application/xml",
                    raw_of=raw,
                )
                ordinal += 1


def _attendance_facts(
    years: list[Any], school: dict[str, Any], pupil: dict[str, str | None]
) -> list[tuple[str, Fact]]:
    """An attendance fact per school of the pupil's latest year: each school's alert from its own
    ``YearData`` (``LEA``/``Estab``; the header's school when a block names none), attributed to it."""
    blocks = [(i, {name: text(y, name) for name in YEAR_FIELDS}) for i, y in enumerate(years, start=1)]
    latest = max(b["Year"] or "" for _, b in blocks)
    upn = (pupil["UPN"] or "").strip().upper()
    out: list[tuple[str, Fact]] = []
    for i, year in blocks:
        if (year["Year"] or "") != latest:
            continue
        lea, estab = clean(year["LEA"]), clean(year["Estab"])
        own = (lea is None and estab is None) or (
            lea == clean(school.get("LEA")) and estab == clean(school.get("Estab"))
        )
        recorder = (
            school
            if own
            else {
                "LEA": lea,
                "Estab": estab,
                "URN": None,
                "SchoolName": None,
                "DestLEA": school.get("DestLEA"),
                "DateTime": school.get("DateTime"),
            }
        )
        try:
            level = alert_level(year)[0]
        except MappingError:
            level = "invalid"
        if level:
            # The header school's key is as it always was, so re-reading old returns publishes nothing.
            named = (school.get("URN") or school.get("Estab")) if own else f"{lea or ''}{estab or ''}"
            where = f"{named}|{upn}"
            suffix = " / Attendance / YearData" + (f" {i}" if len(blocks) > 1 else "")
            out.append(
                (
                    suffix,
                    Fact(
                        "attendance",
                        f"att|{where}|{year['Year']}|{level}",
                        {"school": recorder, "pupil": pupil, "year": year},
                    ),
                )
            )
    return out


def school_source(school: dict[str, Any], system: str) -> dict[str, Any]:
    """The Source record of a school."""
    urn = clean(school.get("URN"))
    dfe = f"{clean(school.get('LEA')) or ''}{clean(school.get('Estab')) or ''}"
    return {
        "agency": "EDUCATION",
        "organisation": urn or dfe,
        "organisation_name": clean(school.get("SchoolName")) or f"School {urn or dfe}",
        "system": system,
        "record_id": None,
        "contact": None,
    }


class CtfMapper:
    """``map_record`` for CTF facts: ATTENDANCE_ALERT and CHILD_MISSING_EDUCATION."""

    __slots__ = ()

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        fact: Fact = record.data
        f = fact.fields
        school, pupil = f["school"], f["pupil"]
        upn = clean(pupil["UPN"])
        if upn is None:
            raise MappingError("UPN is missing.")
        lea = clean(school.get("LEA"))
        child = {
            "upn": upn,
            "given_name": clean(pupil["Forename"]),
            "family_name": clean(pupil["Surname"]),
            "date_of_birth": parse_date(pupil["DOB"], "DOB"),
            "school_urn": clean(school.get("URN")),
            "local_authority_code": lea if lea and lea.isdigit() else None,
        }
        sent = parse_date(school.get("DateTime"), "Header/DateTime") or date.today()
        if fact.kind == "attendance":
            return self._attendance(record, school, child, f["year"], sent)
        if fact.kind == "missing":
            left = parse_date(f["left"], "SchoolHistory/School/LeavingDate")
            details = {
                "missing_education_reason": "MOVED_DESTINATION_UNKNOWN",
                "left_roll_date": left,
                "removal_ground": None,
                "last_attended_date": None,
                "last_known_destination": None,
                "enquiries_made": None,
                "siblings_also_missing": None,
                "local_authority_notified_at": None,
            }
            return build_event(
                record,
                event_type="CHILD_MISSING_EDUCATION",
                occurred_at=local_midnight(left or sent, TIMEZONE),
                recorded_at=local_midnight(sent, TIMEZONE),
                source=school_source(school, "ctf"),
                risk="NEEDS_SUPPORT",
                child=child,
                details=details,
            )
        raise NoEvent(f"A {fact.kind} fact is not published.")

    def _attendance(
        self,
        record: SourceRecord,
        school: dict[str, Any],
        child: dict[str, Any],
        year: dict[str, Any],
        sent: date,
    ) -> dict[str, Any]:
        level, possible, missed, unauthorised = alert_level(year)
        if level is None:
            raise NoEvent("Attendance is above the persistent absence threshold.")
        start_year = _int(year["Year"], "YearData/Year")
        if not 1990 <= start_year <= sent.year:
            raise MappingError("YearData/Year is not a plausible academic year.")
        period_start = date(start_year, 9, 1)
        period_end = min(date(start_year + 1, 8, 31), max(sent, period_start))
        details = {
            "period_start": period_start,
            "period_end": period_end,
            "academic_year": f"{start_year}/{(start_year + 1) % 100:02d}",
            "alert_level": level,
            "attendance_percentage": round(100.0 * (possible - missed) / possible, 1),
            "possible_sessions": possible,
            "sessions_missed": missed,
            "unauthorised_sessions": unauthorised,
            "illness_or_medical_sessions": None,
            "school_action": None,
        }
        return build_event(
            record,
            event_type="ATTENDANCE_ALERT",
            occurred_at=local_midnight(period_end, TIMEZONE),
            recorded_at=local_midnight(sent, TIMEZONE),
            source=school_source(school, "ctf"),
            risk="NEEDS_SUPPORT",
            child=child,
            details=details,
        )
