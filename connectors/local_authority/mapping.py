"""Local-authority facts to events: the connector's pure mapping function.

One :class:`LaMapper` serves every LA format: a fact's ``kind`` says which event it is.
Errors are :class:`MappingError` sentences naming the element or column, never its value.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors.exceptions import MappingError, NoEvent
from connectors.local_authority.casesystem import consent_record, family_help_details
from connectors.local_authority.identity import child_identity
from connectors.local_authority.profile import TIMEZONE, LaProfile
from connectors.runtime.event_builder import Finding, build_event
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import Fact, clean, local_midnight, parse_date

#: CIN census category of abuse codes.
ABUSE = {
    "NEG": "NEGLECT",
    "PHY": "PHYSICAL_ABUSE",
    "SAB": "SEXUAL_ABUSE",
    "EMO": "EMOTIONAL_ABUSE",
    "MUL": "MULTIPLE",
}
#: CIN census ReferralSource codes whose referrer hears the outcome (flow F5).
REFERRERS = {
    "2A": "SCHOOL_DSL",
    "3A": "GP",
    "3B": "HEALTH_SAFEGUARDING",
    "3C": "HEALTH_SAFEGUARDING",
    "3D": "HEALTH_SAFEGUARDING",
    "3E": "HEALTH_SAFEGUARDING",
    "3F": "HEALTH_SAFEGUARDING",
    "6": "POLICE_PPU",
}
#: CIN census assessment factor codes that name a kind of harm (the others are about the
#: parents or the household, or have no ConcernCategory): never guessed.
ASSESSMENT_FACTORS = {
    "3A": "DOMESTIC_ABUSE",
    "3B": "DOMESTIC_ABUSE",
    "3C": "DOMESTIC_ABUSE",
    "22A": "FEMALE_GENITAL_MUTILATION",
    "24A": "CRIMINAL_EXPLOITATION",
}
LEGAL_STATUS = {"C1", "C2", "D1", "E1", "J1", "J2", "J3", "L1", "L2", "L3", "V2", "V3", "V4"}
CATEGORY_OF_NEED = {f"N{n}" for n in range(1, 9)}
#: SSDA903 MISSING codes: missing from placement, away from placement without authorisation.
MISSING_KINDS = {"M", "A"}
SYSTEMS = {"cin": "cin-census", "ssda903": "ssda903", "family-help": "case-system"}


class LaMapper:
    """``map_record`` for local-authority facts (CIN census, SSDA903, family help).

    Args:
        profile: the authority's settings and NHS number cross-reference.
        system: the source system named in each event (``cin-census``, ``ssda903``, ``case-system``).
    """

    __slots__ = ("profile", "system")

    def __init__(self, profile: LaProfile, system: str) -> None:
        self.profile = profile
        self.system = system

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        fact: Fact = record.data
        handler = getattr(self, f"_{fact.kind}", None)
        if handler is None:
            raise NoEvent(f"A {fact.kind} fact is not published.")
        return handler(record, fact.fields)  # type: ignore[no-any-return]

    # -- CIN census ----------------------------------------------------------------------------
    def _census_child(self, f: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
        ids = f["identifiers"]
        return child_identity(
            self.profile,
            f["la_code"],
            ids["LAchildID"],
            upn=ids["UPN"],
            birth_date=ids["PersonBirthDate"] or ids.get("ExpectedPersonBirthDate"),
            findings=findings,
        )

    def _event(
        self,
        record: SourceRecord,
        event_type: str,
        la_code: str,
        day: date,
        risk: str,
        child: dict[str, Any],
        details: dict[str, Any],
        findings: list[Finding] | None = None,
        *,
        before_birth: bool = False,
    ) -> dict[str, Any]:
        return build_event(
            record,
            event_type=event_type,
            occurred_at=local_midnight(day, TIMEZONE),
            recorded_at=None,
            source=self.profile.source(la_code, self.system),
            risk=risk,
            child=child,
            details=details,
            findings=findings,
            before_birth=before_birth,
        )

    def _referral_outcome(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        cin = f["cin"]
        referred = parse_date(cin["CINreferralDate"], "CINreferralDate", required=True)
        assert referred is not None
        decided = parse_date(f["decision_date"], "the decision's date") or referred
        if decided < referred:
            raise MappingError(
                f"The referral's outcome ({f.get('decision_element') or 'its date'}) is dated before CINreferralDate."
            )
        decision = f["decision"]
        risk = {"NO_FURTHER_ACTION": "INFORMATION", "SECTION_47_ENQUIRY": "SIGNIFICANT_HARM"}.get(
            decision, "NEEDS_SUPPORT"
        )
        details = {
            "referral_date": referred,
            "decision": decision,
            "decision_date": decided,
            "referrer_audience": REFERRERS.get((cin["ReferralSource"] or "").strip().upper()),
            "referrer_organisation": None,
            "referrer_reference": None,
            "contact": self.profile.contact(),
            "factors_identified": sorted(
                {
                    ASSESSMENT_FACTORS[c.upper()]
                    for c in f.get("factors") or []
                    if c.upper() in ASSESSMENT_FACTORS
                }
            ),
            "decision_reasons": None,
            "next_steps": None,
        }
        found: list[Finding] = []
        child = self._census_child(f, found)
        return self._event(
            record, "REFERRAL_OUTCOME", f["la_code"], decided, risk, child, details, found, before_birth=True
        )

    def _section_47(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        started = parse_date(f["item"]["S47ActualStartDate"], "S47ActualStartDate", required=True)
        assert started is not None
        details: dict[str, Any] = {
            "meeting_at": local_midnight(started, TIMEZONE),
            "meeting_format": None,
            "joining_details": None,
            "convened_by": self.profile.contact(),
            "section_47": True,
            "concern_categories": [],
            "concerns": None,
            "information_requested": None,
            "police_investigation_considered": None,
        }
        found: list[Finding] = []
        child = self._census_child(f, found)
        return self._event(
            record,
            "STRATEGY_DISCUSSION",
            f["la_code"],
            started,
            "SIGNIFICANT_HARM",
            child,
            details,
            found,
            before_birth=True,
        )

    def _plan(self, record: SourceRecord, f: dict[str, Any], change: str) -> dict[str, Any]:
        item = f["item"]
        start = parse_date(item["CPPstartDate"], "CPPstartDate", required=True)
        assert start is not None
        end = parse_date(item["CPPendDate"], "CPPendDate") if change == "ENDED" else None
        if end is not None and end < start:
            raise MappingError("CPPendDate is before CPPstartDate.")
        code = (item["LatestCategoryOfAbuse"] or item["InitialCategoryOfAbuse"] or "").strip().upper()
        if code and code not in ABUSE:
            raise MappingError("The category of abuse is not a CIN census code (NEG, PHY, SAB, EMO or MUL).")
        details = {
            "change": change,
            "start_date": start,
            "end_date": end,
            "next_review_date": None,
            "responsible_local_authority_code": f["la_code"],
            "responsible_contact": self.profile.contact(),
            "category_of_abuse": ABUSE.get(code),
            "plan_summary": None,
        }
        risk = "SIGNIFICANT_HARM" if change == "STARTED" else "INFORMATION"
        found: list[Finding] = []
        child = self._census_child(f, found)
        return self._event(
            record,
            "CHILD_PROTECTION_PLAN",
            f["la_code"],
            end or start,
            risk,
            child,
            details,
            found,
            before_birth=True,
        )

    def _cpp_start(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._plan(record, f, "STARTED")

    def _cpp_end(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._plan(record, f, "ENDED")

    def _cin_plan(self, record: SourceRecord, f: dict[str, Any], change: str) -> dict[str, Any]:
        item = f["item"]
        start = parse_date(item["CINPlanStartDate"], "CINPlanStartDate", required=True)
        assert start is not None
        end = parse_date(item["CINPlanEndDate"], "CINPlanEndDate") if change == "CLOSED" else None
        if end is not None and end < start:
            raise MappingError("CINPlanEndDate is before CINPlanStartDate.")
        details = {
            "change": change,
            "case_type": "CHILD_IN_NEED",
            "opened_date": start,
            "closed_date": end,
            "lead_practitioner": self.profile.contact(),
            "needs": [],
            "consent_state": None,
            "closure_reason": None,
            "plan_summary": None,
        }
        found: list[Finding] = []
        child = self._census_child(f, found)
        return self._event(
            record,
            "FAMILY_HELP_CASE",
            f["la_code"],
            end or start,
            "NEEDS_SUPPORT",
            child,
            details,
            found,
            before_birth=True,
        )

    def _cin_plan_start(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._cin_plan(record, f, "OPENED")

    def _cin_plan_end(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._cin_plan(record, f, "CLOSED")

    # -- SSDA903 ---------------------------------------------------------------------------------
    def _903_child(self, f: dict[str, Any], found: list[Finding]) -> dict[str, Any]:
        """The child of an SSDA903 row, identified from the header table's row for it."""
        head = f["header"] or {}
        return child_identity(
            self.profile,
            f["la_code"],
            f["child"],
            upn=head.get("UPN"),
            birth_date=head.get("DOB"),
            birth_element="DOB",
            findings=found,
        )

    def _looked_after(self, record: SourceRecord, f: dict[str, Any], change: str) -> dict[str, Any]:
        found: list[Finding] = list(f.get("findings") or [])
        child = self._903_child(f, found)
        start = parse_date(f["start"], "DECOM", required=True)
        assert start is not None
        end = parse_date(f["end"], "DEC") if change == "ENDED" else None
        if end is not None and end < start:
            raise MappingError("DEC is before the period of care's first DECOM.")
        legal = (f.get("LS") or "").strip().upper() or None
        if legal is not None and legal not in LEGAL_STATUS:
            raise MappingError("LS is not an SSDA903 legal status code.")
        need = (f.get("CIN") or "").strip().upper() or None
        if need is not None and need not in CATEGORY_OF_NEED:
            raise MappingError("CIN is not an SSDA903 category of need (N1 to N8).")
        details = {
            "change": change,
            "start_date": start,
            "end_date": end,
            "responsible_local_authority_code": f["la_code"],
            "responsible_contact": self.profile.contact(),
            "legal_status": legal,
            "category_of_need": need,
            "placement_type": clean(f.get("PLACE")),
            "placed_out_of_area": None,
            "placement_local_authority_code": None,
            "placement_address": None,
            "unaccompanied_asylum_seeking": None,
            "reason_ended": clean(f.get("REC")) if change == "ENDED" else None,
        }
        risk = "NEEDS_SUPPORT" if change == "STARTED" else "INFORMATION"
        return self._event(
            record, "LOOKED_AFTER_STATUS", f["la_code"], end or start, risk, child, details, found
        )

    def _lac_start(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._looked_after(record, f, "STARTED")

    def _lac_end(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._looked_after(record, f, "ENDED")

    def _missing(self, record: SourceRecord, f: dict[str, Any], change: str) -> dict[str, Any]:
        found: list[Finding] = []
        child = self._903_child(f, found)
        start = parse_date(f["start"], "MIS_START", required=True)
        assert start is not None
        end = parse_date(f["end"], "MIS_END") if change == "RETURNED" else None
        if end is not None and end < start:
            raise MappingError("MIS_END is before MIS_START.")
        kind = (f.get("MISSING") or "").strip().upper()
        if kind not in MISSING_KINDS:
            raise MappingError("MISSING is not an SSDA903 code (M missing, A away without authorisation).")
        details = {
            "change": change,
            "missing_since": local_midnight(start, TIMEZONE),
            "reported_at": None,
            "returned_at": local_midnight(end, TIMEZONE) if end else None,
            "risk_grading": None,
            "missing_from": "CARE_PLACEMENT",
            "episodes_last_12_months": None,
            "found_location": None,
            "found_address": None,
            "harm_while_missing": None,
            "exploitation_suspected": None,
            "return_interview_offered": None,
            "return_interview_completed": None,
            "associates": [],
            "circumstances": None,
        }
        risk = "NEEDS_SUPPORT" if change == "REPORTED" else "INFORMATION"
        return self._event(record, "MISSING_EPISODE", f["la_code"], end or start, risk, child, details, found)

    def _missing_start(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._missing(record, f, "REPORTED")

    def _missing_end(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._missing(record, f, "RETURNED")

    # -- family help (case system export) --------------------------------------------------------
    def _family_help(self, record: SourceRecord, f: dict[str, Any], change: str) -> dict[str, Any]:
        row = f["row"]
        found: list[Finding] = []
        child = child_identity(
            self.profile,
            f["la_code"],
            row.get("LAchildID"),
            upn=row.get("UPN"),
            birth_date=row.get("PersonBirthDate"),
            nhs_number=row.get("NHSnumber"),
            findings=found,
        )
        details = family_help_details(row, change, self.profile)
        day = details["closed_date"] if change == "CLOSED" else details["opened_date"]
        return self._event(
            record, "FAMILY_HELP_CASE", f["la_code"], day, "NEEDS_SUPPORT", child, details, found
        )

    def _fh_open(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._family_help(record, f, "OPENED")

    def _fh_close(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return self._family_help(record, f, "CLOSED")

    def _consent(self, record: SourceRecord, f: dict[str, Any]) -> dict[str, Any]:
        return consent_record(f["row"], f["la_code"], self.profile)
