"""Family help cases and consent records exported from the authority's case system.

CSV (header row) or JSON (an array, or one object per line in ``.ndjson``/``.jsonl``) with
these columns (JSON: members of the same names). Dates as ``yyyy-mm-dd``, ``dd/mm/yyyy`` or
``dd/mm/yy``; names are matched exactly; blank means unknown.

Family help cases (``--format family-help``), one row per case, ``FAMILY_HELP_CASE`` events:

| column | meaning |
| --- | --- |
| ``LAchildID`` | the authority's child id (required) |
| ``NHSnumber`` | the child's NHS number, if the case system holds it (else ``--xref``) |
| ``UPN`` | the child's UPN (or a ``UN1``-``UN10`` code) |
| ``PersonBirthDate`` | date of birth |
| ``CaseID`` | the case's id in the case system (required) |
| ``CaseType`` | ``TARGETED_EARLY_HELP`` or ``CHILD_IN_NEED`` (required) |
| ``OpenedDate`` | when the case opened (required): an ``OPENED`` event |
| ``ClosedDate`` | when it closed: a ``CLOSED`` event |
| ``ClosureReason`` | ``NEEDS_MET``, ``STEPPED_UP_TO_CHILD_PROTECTION``, ... (FamilyHelpClosureReason) |
| ``Needs`` | FamilyNeed codes separated by ``;`` |
| ``ConsentState`` | ``GIVEN``, ``REFUSED``, ``WITHDRAWN`` or ``NOT_SOUGHT`` |
| ``LeadPractitionerTeam`` | the lead practitioner's team |
| ``LeadPractitionerPhone``, ``LeadPractitionerEmail`` | how to reach that team |

Consent records (``--format consent``), one row per recorded decision, to ``sg.consent.v1``
keyed by ``schemas.child_keys.consent_key``:

| column | meaning |
| --- | --- |
| ``ConsentID`` | the record's id in the case system (required) |
| ``LAchildID``, ``NHSnumber`` | the child (at least one; NHS number also from ``--xref``) |
| ``Audience`` | ``FAMILY_HELP``, ``SCHOOL_DSL``, ... or ``ALL`` (required) |
| ``Purpose`` | ``FAMILY_HELP`` (the default) |
| ``State`` | ``GIVEN``, ``REFUSED``, ``WITHDRAWN`` or ``NOT_SOUGHT`` (required) |
| ``GivenBy`` | ``PARENT``, ``CHILD`` or ``OTHER`` |
| ``RecordedAt`` | when it was recorded (required): ISO 8601 with zone, or a date (local midnight) |
| ``RecordedBy`` | the team or practitioner role that recorded it (required; no personal name) |
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.exceptions import SerdeError
from connectors.exceptions import MappingError
from connectors.local_authority.identity import child_identity
from connectors.local_authority.profile import TIMEZONE, LaProfile
from connectors.runtime.delivery import TransactionalDelivery, _Message, check_topics
from connectors.runtime.readers import CsvReader, FileRef, JsonReader, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import Fact, clean, date_key, local_midnight, parse_date
from schemas.child_keys import consent_key
from schemas.topics import CONSENT_TOPIC

CASE_TYPES = ("TARGETED_EARLY_HELP", "CHILD_IN_NEED")
CLOSURE_REASONS = (
    "NEEDS_MET",
    "STEPPED_UP_TO_CHILD_PROTECTION",
    "STEPPED_DOWN_TO_UNIVERSAL_SERVICES",
    "FAMILY_DISENGAGED",
    "CONSENT_WITHDRAWN",
    "MOVED_AWAY",
    "OTHER",
)
NEEDS = (
    "EDUCATION",
    "EARLY_YEARS_DEVELOPMENT",
    "MENTAL_AND_PHYSICAL_HEALTH",
    "SUBSTANCE_USE",
    "FAMILY_RELATIONSHIPS",
    "ABUSE_AND_EXPLOITATION",
    "CRIME",
    "DOMESTIC_ABUSE",
    "HOUSING",
    "FINANCIAL_STABILITY",
)
CONSENT_STATES = ("GIVEN", "REFUSED", "WITHDRAWN", "NOT_SOUGHT")
AUDIENCES = (
    "MASH",
    "FAMILY_HELP",
    "SCHOOL_DSL",
    "GP",
    "HEALTH_SAFEGUARDING",
    "EMERGENCY_CARE",
    "POLICE_PPU",
    "ALL",
)
GIVEN_BY = ("PARENT", "CHILD", "OTHER")


def _code(
    row: dict[str, Any], column: str, allowed: tuple[str, ...], *, required: bool = False
) -> str | None:
    value = clean(str(row.get(column) or ""))
    if value is None:
        if required:
            raise MappingError(f"{column} is missing.")
        return None
    code = value.upper().replace(" ", "_").replace("-", "_")
    if code not in allowed:
        raise MappingError(f"{column} is not one of {', '.join(allowed)}.")
    return code


def family_help_details(row: dict[str, Any], change: str, profile: LaProfile) -> dict[str, Any]:
    """The FamilyHelpCase details of a case row."""
    opened = parse_date(row.get("OpenedDate"), "OpenedDate", required=True)
    closed = parse_date(row.get("ClosedDate"), "ClosedDate")
    if opened is not None and closed is not None and closed < opened:
        raise MappingError("ClosedDate is before OpenedDate.")
    needs = [_code({"Needs": n}, "Needs", NEEDS) for n in str(row.get("Needs") or "").split(";") if n.strip()]
    team = clean(row.get("LeadPractitionerTeam"))
    return {
        "change": change,
        "case_type": _code(row, "CaseType", CASE_TYPES, required=True),
        "opened_date": opened,
        "closed_date": closed if change == "CLOSED" else None,
        "lead_practitioner": {
            "team": team,
            "phone": clean(row.get("LeadPractitionerPhone")),
            "email": clean(row.get("LeadPractitionerEmail")),
            "reference": None,
        }
        if team
        else None,
        "needs": needs,
        "consent_state": _code(row, "ConsentState", CONSENT_STATES),
        "closure_reason": _code(row, "ClosureReason", CLOSURE_REASONS) if change == "CLOSED" else None,
        "plan_summary": None,
    }


def _recorded_at(value: Any) -> datetime:
    text = clean(str(value or ""))
    if text is None:
        raise MappingError("RecordedAt is missing.")
    if "T" in text:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MappingError("RecordedAt is not an ISO 8601 time.") from None
        if when.tzinfo is None:
            raise MappingError("RecordedAt has a time but no time zone.")
        return when
    day = parse_date(text, "RecordedAt", required=True)
    assert day is not None
    return local_midnight(day, TIMEZONE)


def consent_record(row: dict[str, Any], la_code: str, profile: LaProfile) -> dict[str, Any]:
    """The ConsentRecord of a consent row."""

    consent_id = clean(row.get("ConsentID"))
    if consent_id is None:
        raise MappingError("ConsentID is missing.")
    child = child_identity(profile, la_code, row.get("LAchildID"), nhs_number=row.get("NHSnumber"))
    if not child["nhs_number"] and not child["la_child_id"]:
        raise MappingError("The record names no child: LAchildID and NHSnumber are both missing.")
    recorded_by = clean(row.get("RecordedBy"))
    if recorded_by is None:
        raise MappingError("RecordedBy is missing.")
    return {
        "consent_id": consent_id,
        "nhs_number": child["nhs_number"],
        "la_child_id": child["la_child_id"],
        "local_authority_code": la_code,
        "audience": _code(row, "Audience", AUDIENCES, required=True),
        "purpose": _code(row, "Purpose", ("FAMILY_HELP",)) or "FAMILY_HELP",
        "state": _code(row, "State", CONSENT_STATES, required=True),
        "given_by": _code(row, "GivenBy", GIVEN_BY),
        "recorded_at": _recorded_at(row.get("RecordedAt")),
        "recorded_by": recorded_by,
    }


class _NotText:
    """A JSON member that is a list, an object, true/false or a fraction: not a column's value."""


def _text(value: Any) -> Any:
    """A member's value as a CSV column would give it: text, a whole number as text, or None."""
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _NotText()


class CaseSystemReader:
    """Rows of a case-system export as facts: ``fh_open``/``fh_close`` per case, ``consent`` per record.

    Args:
        kind: ``family-help`` or ``consent``.
        la_code: the authority's code.
        period: the period a family-help export is the full list of cases for (``--period``);
            without it an export withdraws no case it no longer has.
    """

    def __init__(self, kind: str, la_code: str, period: str | None = None) -> None:
        self.kind = kind
        self.la_code = la_code
        self.scope = f"{kind}|{la_code}|{period}" if period and kind == "family-help" else None
        self._csv = CsvReader()
        self._json = JsonReader()
        self.suffixes = self._csv.suffixes + self._json.suffixes

    def estimate(self, path: Path) -> int:
        return self._csv.estimate(path) if path.name.lower().endswith(".csv") else self._json.estimate(path)

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        inner = self._csv if ref.path.name.lower().endswith(".csv") else self._json
        ordinal = 0
        for rec in inner.records(ref):
            for suffix, data in self._facts(rec.data):
                yield SourceRecord(
                    ref.connector,
                    ref.source,
                    ref.file_id,
                    ordinal,
                    rec.position + suffix,
                    data,
                    rec.raw,
                    rec.content_type,
                    header=rec.header,
                    original=rec.data if rec.raw is None and not isinstance(rec.data, Malformed) else None,
                )
                ordinal += 1

    def _facts(self, data: Any) -> list[tuple[str, Any]]:
        if isinstance(data, Malformed):
            return [("", data)]
        row = {str(k).strip(): _text(v) for k, v in data.items()}
        if any(isinstance(v, _NotText) for v in row.values()):
            return [("", Malformed("A member of the record is not text, a whole number or null."))]
        base = {"la_code": self.la_code, "row": row}
        if self.kind == "consent":
            key = f"consent|{self.la_code}|{row.get('ConsentID')}|{row.get('State')}|{row.get('RecordedAt')}"
            return [("", Fact("consent", key, base))]
        who = f"{self.la_code}|{row['LAchildID']}" if row.get("LAchildID") else None
        if not row.get("CaseID"):
            return [("", Malformed("CaseID is missing.", who))]
        case = f"{self.la_code}|{row.get('CaseID')}|{date_key(row.get('OpenedDate'))}"
        facts: list[tuple[str, Any]] = [
            (" (opened)", Fact("fh_open", f"fh-open|{case}", base, self.scope, who))
        ]
        if row.get("ClosedDate"):
            facts.append((" (closed)", Fact("fh_close", f"fh-close|{case}", base, self.scope, who)))
        return facts


class ConsentDelivery(TransactionalDelivery):
    """The transactional delivery, publishing ConsentRecords to ``sg.consent.v1`` (keyed by
    ``consent_key``) instead of events to the ingress topic; dead letters as usual."""

    def __init__(self, settings: Any, name: str, **options: Any) -> None:
        check_topics(settings, [settings.topic(CONSENT_TOPIC)])
        super().__init__(settings, "LOCAL_AUTHORITY", name, **options)
        self.consent_topic = settings.topic(CONSENT_TOPIC)
        self._consents = self.codecs.consent

    def publish(self, record: SourceRecord, event: dict[str, Any]) -> None:
        key = consent_key(event)
        if key is None:
            raise ValueError("The consent record names no child.")
        try:
            value = self._consents.encode(event)
        except (ValueError, TypeError) as exc:
            raise SerdeError(f"The consent record does not fit the schema ({type(exc).__name__}).") from None
        self._send(_Message(self.consent_topic, key.encode(), value, None, record.file_id, record.ordinal))
