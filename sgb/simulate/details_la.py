"""``sgb simulate``: details builders for local-authority events (education's are in
:mod:`sgb.simulate.details_education`)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from schemas.reference import all_local_authorities, icb_for, police_force_for
from sgb.simulate import data
from sgb.simulate.scene import (
    SYNTHETIC,
    Draft,
    Scene,
    la_contact,
    parents,
    pick_risk,
    some,
    stranger,
)

# --------------------------------------------------------------------------- local authority


def _mash(s: Scene, reference: str | None = None) -> dict[str, Any]:
    return la_contact(s, "Multi-agency safeguarding hub", "mash", reference)


def _referrer(s: Scene) -> tuple[str, str, str]:
    """(referrer audience, its organisation key, its reference) consistent with the child."""
    r, child = s.rng, s.child
    la = child.local_authority_code
    options: list[tuple[str, str | None]] = [
        ("POLICE_PPU", police_force_for(la)),
        ("SCHOOL_DSL", child.school_urn),
        ("HEALTH_SAFEGUARDING", icb_for(la)),
        ("GP", child.gp_practice_ods),
    ]
    weights = (30, 30, 20, 12)
    usable = [(opt, w) for opt, w in zip(options, weights, strict=True) if opt[1]]
    ((audience, organisation),) = r.choices([o for o, _ in usable], weights=[w for _, w in usable])
    prefix = {"POLICE_PPU": "CAD", "SCHOOL_DSL": "DSL", "HEALTH_SAFEGUARDING": "HSG", "GP": "GPR"}[audience]
    return audience, str(organisation), f"{prefix}-{r.randrange(10000, 99999)}"


def referral_outcome(s: Scene) -> Draft:
    r = s.rng
    audience, organisation, reference = _referrer(s)
    decision = r.choices(
        (
            "NO_FURTHER_ACTION",
            "INFORMATION_AND_ADVICE",
            "EARLY_HELP",
            "SECTION_17_ASSESSMENT",
            "SECTION_47_ENQUIRY",
            "ALREADY_OPEN",
        ),
        weights=(20, 15, 20, 25, 12, 8),
    )[0]
    risk = {
        "SECTION_47_ENQUIRY": "SIGNIFICANT_HARM",
        "SECTION_17_ASSESSMENT": "NEEDS_SUPPORT",
        "EARLY_HELP": "NEEDS_SUPPORT",
        "ALREADY_OPEN": "NEEDS_SUPPORT",
    }.get(decision, "INFORMATION")
    factors = (
        []
        if decision == "NO_FURTHER_ACTION"
        else some(
            r,
            (
                "NEGLECT",
                "PHYSICAL_ABUSE",
                "EMOTIONAL_ABUSE",
                "DOMESTIC_ABUSE",
                "CRIMINAL_EXPLOITATION",
                "OTHER",
            ),
            1,
            3,
        )
    )
    today = s.at.date()
    details = {
        "referral_date": today - timedelta(days=r.randint(0, 5)),
        "decision": decision,
        "decision_date": today,
        "referrer_audience": audience,
        "referrer_organisation": organisation,
        "referrer_reference": reference,
        "contact": _mash(s, f"MASH-{r.randrange(100000, 999999)}"),
        "factors_identified": factors,
        "decision_reasons": "Threshold considered against the local multi-agency guidance (synthetic).",
        "next_steps": {
            "SECTION_47_ENQUIRY": "Strategy discussion to be convened (synthetic).",
            "SECTION_17_ASSESSMENT": "Social worker allocated for an assessment (synthetic).",
            "EARLY_HELP": "Passed to the family help team (synthetic).",
        }.get(decision),
    }
    narrative = f"{SYNTHETIC}Referral reviewed by the MASH; decision {decision.lower().replace('_', ' ')}."
    return Draft(details, risk, narrative, parents(s) if decision != "NO_FURTHER_ACTION" else [])


def child_protection_plan(s: Scene) -> Draft:
    r = s.rng
    reference = f"CPP-{r.randrange(10000, 99999)}"
    contact = la_contact(s, "Child protection conference service", "cpconference", reference)
    if s.phase == "ENDED":
        start, category = s.opened
        details = {
            "change": "ENDED",
            "start_date": start,
            "end_date": s.at.date(),
            "next_review_date": None,
            "responsible_local_authority_code": s.child.local_authority_code,
            "responsible_contact": contact,
            "category_of_abuse": category,
            "plan_summary": "Review conference agreed the plan can end (synthetic).",
        }
        risk = r.choice(("NEEDS_SUPPORT", "INFORMATION"))
        narrative = f"{SYNTHETIC}Child protection plan ended at review conference."
        return Draft(details, risk, narrative, parents(s))
    category = r.choices(
        ("NEGLECT", "EMOTIONAL_ABUSE", "PHYSICAL_ABUSE", "SEXUAL_ABUSE", "MULTIPLE"),
        weights=(50, 35, 7, 4, 4),
    )[0]
    start = s.at.date()
    details = {
        "change": "STARTED",
        "start_date": start,
        "end_date": None,
        "next_review_date": start + timedelta(days=91),
        "responsible_local_authority_code": s.child.local_authority_code,
        "responsible_contact": contact,
        "category_of_abuse": category,
        "plan_summary": "Core group to meet every six weeks; parenting support (synthetic).",
    }
    risk = r.choices(("SIGNIFICANT_HARM", "NEEDS_SUPPORT"), weights=(60, 40))[0]
    narrative = f"{SYNTHETIC}Initial child protection conference made a plan under {category.lower()}."
    return Draft(details, risk, narrative, parents(s), keep=(start, category))


def _other_la(s: Scene) -> str:
    codes = [la.code for la in all_local_authorities() if la.code != s.child.local_authority_code]
    return s.rng.choice(codes)


def looked_after_status(s: Scene) -> Draft:
    r = s.rng
    la = s.child.local_authority_code
    contact = la_contact(s, "Children in care service", "childrenincare", f"LAC-{r.randrange(10000, 99999)}")
    if s.phase == "ENDED":
        placement = copy.deepcopy(s.opened)
        placement.update(
            {
                "change": "ENDED",
                "end_date": s.at.date(),
                "responsible_contact": contact,
                "reason_ended": r.choice(data.LAC_ENDED_REASONS),
            }
        )
        risk = r.choice(("NEEDS_SUPPORT", "INFORMATION", "INFORMATION"))
        return Draft(placement, risk, f"{SYNTHETIC}Child ceased to be looked after.", parents(s))
    uasc = s.age >= 14 and r.random() < 0.1
    out_of_area = r.random() < 0.3
    placement_la = _other_la(s) if out_of_area else la
    details = {
        "change": "STARTED",
        "start_date": s.at.date(),
        "end_date": None,
        "responsible_local_authority_code": la,
        "responsible_contact": contact,
        "legal_status": "V2" if uasc else r.choice(data.CARE_LEGAL_STATUSES),
        "category_of_need": "N8"
        if uasc
        else r.choices(("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"), weights=(65, 3, 3, 8, 14, 1, 1, 5))[
            0
        ],
        "placement_type": r.choice(data.PLACEMENT_TYPES),
        "placed_out_of_area": out_of_area,
        "placement_local_authority_code": placement_la,
        "placement_address": s.population.invent_address(r, placement_la),
        "unaccompanied_asylum_seeking": uasc,
        "reason_ended": None,
    }
    risk = r.choices(("SIGNIFICANT_HARM", "NEEDS_SUPPORT"), weights=(50, 50))[0]
    narrative = f"{SYNTHETIC}Child became looked after; placement details held by the authority."
    return Draft(details, risk, narrative, parents(s), keep=copy.deepcopy(details))


def family_help_case(s: Scene) -> Draft:
    r = s.rng
    lead = la_contact(s, "Family help team", "familyhelp", f"FH-{r.randrange(10000, 99999)}")
    if s.phase == "CLOSED":
        opened, case_type, needs = s.opened
        reason = r.choices(
            (
                "NEEDS_MET",
                "STEPPED_UP_TO_CHILD_PROTECTION",
                "STEPPED_DOWN_TO_UNIVERSAL_SERVICES",
                "FAMILY_DISENGAGED",
                "CONSENT_WITHDRAWN",
                "MOVED_AWAY",
                "OTHER",
            ),
            weights=(40, 8, 25, 12, 6, 6, 3),
        )[0]
        risk = (
            "SIGNIFICANT_HARM"
            if reason == "STEPPED_UP_TO_CHILD_PROTECTION"
            else r.choice(("NEEDS_SUPPORT", "INFORMATION"))
        )
        details = {
            "change": "CLOSED",
            "case_type": case_type,
            "opened_date": opened,
            "closed_date": s.at.date(),
            "lead_practitioner": lead,
            "needs": list(needs),
            "consent_state": "WITHDRAWN" if reason == "CONSENT_WITHDRAWN" else "GIVEN",
            "closure_reason": reason,
            "plan_summary": "Case closed at the final review (synthetic).",
        }
        return Draft(details, risk, f"{SYNTHETIC}Family help case closed.", parents(s))
    case_type = r.choices(("TARGETED_EARLY_HELP", "CHILD_IN_NEED"), weights=(65, 35))[0]
    early = "EARLY_YEARS_DEVELOPMENT" if s.age < 5 else "EDUCATION"
    needs = some(
        r,
        (
            "EDUCATION",
            early,
            "MENTAL_AND_PHYSICAL_HEALTH",
            "SUBSTANCE_USE",
            "FAMILY_RELATIONSHIPS",
            "DOMESTIC_ABUSE",
            "HOUSING",
            "FINANCIAL_STABILITY",
        ),
        1,
        3,
    )
    needs = list(dict.fromkeys(needs))
    risk = pick_risk(r, "FAMILY_HELP_CASE")
    details = {
        "change": "OPENED",
        "case_type": case_type,
        "opened_date": s.at.date(),
        "closed_date": None,
        "lead_practitioner": lead,
        "needs": needs,
        "consent_state": "GIVEN" if case_type == "TARGETED_EARLY_HELP" else r.choice(("GIVEN", None)),
        "closure_reason": None,
        "plan_summary": "Family plan agreed with parents (synthetic).",
    }
    narrative = f"{SYNTHETIC}Family help case opened after a family help assessment."
    return Draft(details, risk, narrative, parents(s), keep=(s.at.date(), case_type, list(needs)))


def strategy_discussion(s: Scene) -> Draft:
    r = s.rng
    risk = pick_risk(r, "STRATEGY_DISCUSSION")
    meeting = s.at + timedelta(hours=r.randint(2, 26))
    meeting = meeting.replace(minute=meeting.minute - meeting.minute % 15, second=0)
    fmt = r.choices(("VIDEO_CALL", "IN_PERSON", "TELEPHONE"), weights=(65, 20, 15))[0]
    joining = {
        "VIDEO_CALL": "Video link sent by the MASH to invited partners (synthetic).",
        "IN_PERSON": "Meeting room 3, civic centre (synthetic).",
        "TELEPHONE": f"Dial-in 020 7946 0{r.randrange(1000):03d}, PIN {r.randrange(1000, 9999)} (synthetic).",
    }
    categories = sorted(
        set(
            some(
                r,
                (
                    "PHYSICAL_ABUSE",
                    "SEXUAL_ABUSE",
                    "NEGLECT",
                    "EMOTIONAL_ABUSE",
                    "DOMESTIC_ABUSE",
                    "CRIMINAL_EXPLOITATION",
                ),
                1,
                2,
            )
        )
    )
    related = parents(s)
    if "PHYSICAL_ABUSE" in categories or "SEXUAL_ABUSE" in categories:
        related.append(stranger(r, "ALLEGED_PERPETRATOR", "family friend", s.at.date(), 20, 50))
    details = {
        "meeting_at": meeting,
        "meeting_format": fmt,
        "joining_details": joining[fmt],
        "convened_by": _mash(s, f"S47-{r.randrange(10000, 99999)}"),
        "section_47": risk == "SIGNIFICANT_HARM",
        "concern_categories": categories,
        "concerns": "Information from partners suggests the child may be at risk of harm (synthetic).",
        "information_requested": "Attendance, health contacts and police call-outs this year (synthetic).",
        "police_investigation_considered": bool({"PHYSICAL_ABUSE", "SEXUAL_ABUSE"} & set(categories))
        or r.random() < 0.3,
    }
    narrative = f"{SYNTHETIC}Strategy discussion convened by the MASH."
    return Draft(details, risk, narrative, related)


BUILDERS_LA = {
    "REFERRAL_OUTCOME": referral_outcome,
    "CHILD_PROTECTION_PLAN": child_protection_plan,
    "LOOKED_AFTER_STATUS": looked_after_status,
    "FAMILY_HELP_CASE": family_help_case,
    "STRATEGY_DISCUSSION": strategy_discussion,
}
