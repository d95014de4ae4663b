"""``sgb simulate``: the details builders for health and police events (the pieces every
builder shares are in :mod:`sgb.simulate.scene`)."""

from __future__ import annotations

import random
from datetime import timedelta

from sgb.simulate import data
from sgb.simulate.scene import (
    SYNTHETIC,
    Builder,
    Draft,
    Scene,
    adult_record,
    at_minutes,
    parents,
    pick_risk,
    some,
    stranger,
)


def emergency_attendance(s: Scene) -> Draft:
    r, age = s.rng, s.age
    reasons = [x for x in data.ATTENDANCE_REASONS if age >= 11 or x[2] not in ("SELF_INFLICTED",)]
    reasons = [x for x in reasons if age >= 12 or not x[0].startswith("Alcohol")]
    reason, mechanism, intent = r.choice(reasons)
    injured_infant = age < 1 and mechanism is not None
    if intent == "ASSAULT" or injured_infant:
        risk = r.choices(data.RISKS, weights=(60, 40, 0))[0]
    elif intent == "SELF_INFLICTED":
        risk = r.choices(data.RISKS, weights=(35, 65, 0))[0]
    else:
        risk = pick_risk(r, "EMERGENCY_ATTENDANCE")
    trust_code, trust_name, site_code, site_name = s.population.trust_for(s.child.local_authority_code)
    setting = (
        "PAEDIATRIC_EMERGENCY_DEPARTMENT"
        if "Children" in site_name
        else r.choices(
            ("EMERGENCY_DEPARTMENT", "URGENT_TREATMENT_CENTRE", "MINOR_INJURY_UNIT"), weights=(70, 20, 10)
        )[0]
    )
    admitted = r.random() < (0.4 if risk == "SIGNIFICANT_HARM" else 0.12)
    outcome = (
        "ADMITTED"
        if admitted
        else r.choices(
            (
                "DISCHARGED_HOME",
                "LEFT_BEFORE_TREATMENT_COMPLETE",
                "TRANSFERRED_TO_ANOTHER_HOSPITAL",
                "DISCHARGED_INTO_CARE_OF_ANOTHER_AGENCY",
            ),
            weights=(85, 7, 4, 4 if s.looked_after else 1),
        )[0]
    )
    if s.looked_after:
        companion = "Foster carer"
    else:
        companions = ["Mother", "Mother", "Father", "Grandmother"]
        companions += ["Alone", "Friend"] if age >= 14 else []
        companion = r.choice(companions)
    related = parents(s)[:1] if companion in ("Mother", "Father", "Grandmother") else []
    worrying = intent in ("ASSAULT", "SELF_INFLICTED") or injured_infant
    concern = risk != "INFORMATION" and (worrying or r.random() < 0.5)
    details = {
        "arrival_at": s.at,
        "site_ods_code": site_code,
        "site_name": site_name,
        "setting": setting,
        "departed_at": at_minutes(s.at, r, 45, 420),
        "attendance_reason": reason,
        # Clinical codes are left out: a wrong SNOMED code is worse than none.
        "attendance_reason_code": None,
        "injury_mechanism": mechanism,
        "injury_intent": intent,
        "discharge_outcome": outcome,
        "safeguarding_flag_seen": s.flagged,
        "safeguarding_concern_raised": concern,
        "previous_attendances_12_months": r.choices(range(7), weights=(40, 25, 15, 8, 6, 4, 2))[0],
        "accompanied_by": companion,
    }
    narrative = (
        f"{SYNTHETIC}Attended the {setting.lower().replace('_', ' ')} with {reason.lower()}, "
        f"accompanied by {companion.lower()}."
        + (" Account of how it happened was inconsistent." if concern else "")
    )
    return Draft(details, risk, narrative, related, organisation=(trust_code, trust_name))


def _health_role(r: random.Random, age: int) -> str:
    if age < 1:
        return r.choice(("HEALTH_VISITOR", "HEALTH_VISITOR", "MIDWIFE", "GP", "PAEDIATRICIAN"))
    if age < 5:
        return r.choice(
            ("HEALTH_VISITOR", "HEALTH_VISITOR", "GP", "PAEDIATRICIAN", "EMERGENCY_CARE_CLINICIAN", "DENTIST")
        )
    if age < 11:
        return r.choice(("SCHOOL_NURSE", "GP", "PAEDIATRICIAN", "EMERGENCY_CARE_CLINICIAN", "DENTIST"))
    roles = [
        "SCHOOL_NURSE",
        "GP",
        "MENTAL_HEALTH_PRACTITIONER",
        "MENTAL_HEALTH_PRACTITIONER",
        "EMERGENCY_CARE_CLINICIAN",
        "HEALTH_SAFEGUARDING_PROFESSIONAL",
    ]
    return r.choice(roles + (["SEXUAL_HEALTH_PRACTITIONER"] if age >= 13 else []))


_FINDINGS = {
    "NEGLECT": "Weight below the 2nd centile and untreated dental decay (synthetic).",
    "PHYSICAL_ABUSE": "Bruising of differing ages to both upper arms, no consistent explanation (synthetic).",
    "EMOTIONAL_ABUSE": "Child withdrawn and fearful during the appointment (synthetic).",
    "DOMESTIC_ABUSE": "Parent disclosed arguments at home during the appointment (synthetic).",
    "SEXUAL_EXPLOITATION": "Disclosed a relationship with a much older person (synthetic).",
    "SEXUAL_ABUSE": "Findings discussed with the named doctor (synthetic).",
    "FABRICATED_OR_INDUCED_ILLNESS": "Reported symptoms not borne out by investigations (synthetic).",
    "ONLINE_HARM": "Distressed about images shared online (synthetic).",
    "CHILD_ON_CHILD_ABUSE": "Injury attributed to another pupil (synthetic).",
}


def health_safeguarding_concern(s: Scene) -> Draft:
    r, age = s.rng, s.age
    role = _health_role(r, age)
    risk = pick_risk(r, "HEALTH_SAFEGUARDING_CONCERN")
    if role == "SEXUAL_HEALTH_PRACTITIONER":
        pool = ["SEXUAL_EXPLOITATION", "SEXUAL_ABUSE", "CHILD_ON_CHILD_ABUSE"]
    elif role == "MENTAL_HEALTH_PRACTITIONER":
        pool = ["EMOTIONAL_ABUSE", "NEGLECT", "ONLINE_HARM", "DOMESTIC_ABUSE"]
    else:
        pool = ["NEGLECT", "NEGLECT", "PHYSICAL_ABUSE", "EMOTIONAL_ABUSE", "DOMESTIC_ABUSE"]
        if r.random() < 0.03:
            pool.append("FABRICATED_OR_INDUCED_ILLNESS")
    categories = sorted(set(some(r, pool, 1, 2)))
    self_harm = None if age < 8 else (role == "MENTAL_HEALTH_PRACTITIONER" and r.random() < 0.5)
    mental = (
        "Low mood and reduced sleep for several weeks (synthetic)."
        if role == "MENTAL_HEALTH_PRACTITIONER" or self_harm
        else None
    )
    sexual = (
        "Findings recorded in the sexual health record (synthetic)."
        if role == "SEXUAL_HEALTH_PRACTITIONER"
        else None
    )
    factors = some(
        r,
        (
            "DOMESTIC_ABUSE",
            "MENTAL_ILL_HEALTH",
            "DRUG_MISUSE",
            "ALCOHOL_MISUSE",
            "LEARNING_DISABILITY",
            "PHYSICAL_ILL_HEALTH",
        ),
        0,
        2,
    )
    referred = {"SIGNIFICANT_HARM": True, "NEEDS_SUPPORT": r.random() < 0.5, "INFORMATION": False}[risk]
    if role == "GP":
        gp = s.child.gp_practice_ods or ""
        organisation = (gp, s.population.gp_name(gp))
    else:
        trust_code, trust_name, _, _ = s.population.trust_for(s.child.local_authority_code)
        organisation = (trust_code, trust_name)
    details = {
        "raised_by_role": role,
        "service": data.SERVICES[role],
        "concern_categories": categories,
        "injuries_observed": "PHYSICAL_ABUSE" in categories,
        "clinical_findings": _FINDINGS.get(categories[0], "Concern recorded by the clinician (synthetic)."),
        "self_harm": self_harm,
        "mental_health_concern": mental,
        "sexual_health_findings": sexual,
        "parental_factors": factors,
        "referred_to_childrens_social_care": referred,
        "action_taken": (
            "Referred to the MASH and discussed with the named nurse (synthetic)."
            if referred
            else "Discussed with the named nurse; follow-up booked (synthetic)."
        ),
    }
    about = categories[0].lower().replace("_", " ")
    narrative = f"{SYNTHETIC}{data.SERVICES[role]} raised a concern about {about}."
    return Draft(details, risk, narrative, parents(s), organisation=organisation)


def was_not_brought(s: Scene) -> Draft:
    r = s.rng
    period_end = s.at.date() - timedelta(days=1)
    period_start = period_end - timedelta(days=r.randint(90, 180))
    offered = r.randint(3, 8)
    missed = r.randint(2, offered)
    span = (period_end - period_start).days
    days = sorted(r.sample(range(span + 1), missed))
    appointments = [
        {
            "appointment_date": period_start + timedelta(days=d),
            "specialty": r.choice(data.SPECIALTIES),
            "provider_ods_code": r.choice(data.PROVIDER_CODES),
        }
        for d in days
    ]
    unmet = r.random() < 0.6
    risk = "SIGNIFICANT_HARM" if unmet and s.age < 2 and r.random() < 0.3 else pick_risk(r, "WAS_NOT_BROUGHT")
    if r.random() < 0.5 and s.child.gp_practice_ods:
        organisation = (s.child.gp_practice_ods, s.population.gp_name(s.child.gp_practice_ods))
    else:
        trust_code, trust_name, _, _ = s.population.trust_for(s.child.local_authority_code)
        organisation = (trust_code, trust_name)
    details = {
        "period_start": period_start,
        "period_end": period_end,
        "appointments_missed": missed,
        "appointments_offered": offered,
        "missed_appointments": appointments,
        "unmet_health_need": unmet,
        "other_children_affected": r.random() < 0.3,
        "follow_up_action": r.choice(
            (
                "Health visitor home visit arranged (synthetic).",
                "Letter to parents and GP review booked (synthetic).",
                "Discussed at the practice safeguarding meeting (synthetic).",
            )
        ),
    }
    narrative = f"{SYNTHETIC}Not brought to {missed} of {offered} appointments in the period."
    return Draft(details, risk, narrative, parents(s), organisation=organisation)


# ------------------------------------------------------------------------------------- police


def domestic_abuse_incident(s: Scene) -> Draft:
    r = s.rng
    risk = pick_risk(r, "DOMESTIC_ABUSE_INCIDENT")
    dash = {
        "SIGNIFICANT_HARM": r.choices(("HIGH", "MEDIUM"), weights=(80, 20))[0],
        "NEEDS_SUPPORT": r.choices(("MEDIUM", "STANDARD"), weights=(60, 40))[0],
        "INFORMATION": "STANDARD",
    }[risk]
    present = r.random() < (0.85 if risk == "SIGNIFICANT_HARM" else 0.55)
    offences = [] if risk == "INFORMATION" and r.random() < 0.5 else some(r, data.OFFENCES, 1, 2)
    household = s.child.household
    related = []
    if household:
        related.append(adult_record(household[0], "VICTIM", s.child))
    if len(household) > 1:
        related.append(adult_record(household[1], "ALLEGED_PERPETRATOR", s.child))
    else:
        related.append(stranger(r, "ALLEGED_PERPETRATOR", "parent's former partner", s.at.date(), 20, 50))
    details = {
        "incident_at": s.at - timedelta(minutes=r.randint(20, 180)),
        "child_present": present,
        "child_injured": present and risk == "SIGNIFICANT_HARM" and r.random() < 0.35,
        "offence_types": offences,
        "dash_risk_level": dash,
        "arrest_made": bool(offences) and r.random() < {"HIGH": 0.8, "MEDIUM": 0.4, "STANDARD": 0.1}[dash],
        "protective_measures": r.choice(data.PROTECTIVE_MEASURES),
    }
    what = "an assault" if offences else "a verbal argument"
    narrative = (
        f"{SYNTHETIC}Officers attended a report of {what} at the home address; "
        f"the child was {'present' if present else 'not present'}."
    )
    return Draft(details, risk, narrative, related)


def missing_episode(s: Scene) -> Draft:
    r = s.rng
    if s.phase == "RETURNED":
        since, reported, grading, setting = s.opened
        risk = (
            "SIGNIFICANT_HARM"
            if grading == "HIGH" or r.random() < 0.05
            else r.choice(("NEEDS_SUPPORT", "INFORMATION"))
        )
        harm = r.random() < 0.15
        exploitation = r.random() < 0.3
        found = r.random() < 0.6
        associates = [stranger(r, "OTHER_ADULT", "associate", s.at.date(), 18, 30)] if exploitation else []
        if r.random() < 0.4:
            associates.append(
                {
                    "role": "OTHER_CHILD",
                    "relationship_to_child": "friend",
                    "given_name": r.choice(data.GIRLS + data.BOYS),
                    "family_name": r.choice(data.FAMILY_NAMES),
                    "date_of_birth": None,
                    "address": None,
                }
            )
        details = {
            "change": "RETURNED",
            "missing_since": since,
            "reported_at": reported,
            "returned_at": s.at,
            "risk_grading": grading,
            "missing_from": setting,
            "episodes_last_12_months": r.randint(1, 8),
            "found_location": r.choice(data.LOCATIONS_OF_CONCERN) if found else None,
            "found_address": s.population.invent_address(r, s.child.local_authority_code)
            if found and r.random() < 0.4
            else None,
            "harm_while_missing": harm,
            "exploitation_suspected": exploitation,
            "return_interview_offered": True,
            "return_interview_completed": r.random() < 0.6,
            "associates": associates,
            "circumstances": "Returned of their own accord late in the evening (synthetic).",
        }
        narrative = f"{SYNTHETIC}Child returned after being reported missing; return interview offered."
        return Draft(details, risk, narrative, parents(s))
    risk = pick_risk(r, "MISSING_EPISODE")
    grading = {
        "SIGNIFICANT_HARM": "HIGH",
        "NEEDS_SUPPORT": r.choice(("MEDIUM", "LOW")),
        "INFORMATION": r.choice(("LOW", "NO_APPARENT_RISK")),
    }[risk]
    since = s.at - timedelta(minutes=r.randint(90, 720))
    setting = (
        "CARE_PLACEMENT" if s.looked_after else r.choices(("HOME", "SCHOOL", "OTHER"), weights=(80, 12, 8))[0]
    )
    details = {
        "change": "REPORTED",
        "missing_since": since,
        "reported_at": s.at,
        "returned_at": None,
        "risk_grading": grading,
        "missing_from": setting,
        "episodes_last_12_months": r.randint(0, 6),
        "found_location": None,
        "found_address": None,
        "harm_while_missing": None,
        "exploitation_suspected": r.random() < 0.25,
        "return_interview_offered": None,
        "return_interview_completed": None,
        "associates": [],
        "circumstances": "Did not come home after school; phone switched off (synthetic).",
    }
    where = setting.lower().replace("_", " ")
    narrative = f"{SYNTHETIC}Reported missing from {where}; risk graded {grading.lower()}."
    return Draft(details, risk, narrative, parents(s), keep=(since, s.at, grading, setting))


def exploitation_concern(s: Scene) -> Draft:
    r = s.rng
    kind = r.choices(("CRIMINAL", "SEXUAL", "BOTH"), weights=(55, 30, 15))[0]
    risk = pick_risk(r, "EXPLOITATION_CONCERN")
    criminal = kind in ("CRIMINAL", "BOTH")
    pool = ["GOING_MISSING", "UNEXPLAINED_MONEY_OR_GIFTS", "OLDER_ASSOCIATES", "DISENGAGING_FROM_EDUCATION"]
    pool += (
        [
            "MULTIPLE_PHONES",
            "TRAVEL_OUT_OF_AREA",
            "FOUND_IN_DRUG_SUPPLY",
            "CARRYING_WEAPON",
            "GANG_ASSOCIATION",
        ]
        if criminal
        else ["RELATIONSHIP_WITH_OLDER_PERSON", "ONLINE_GROOMING"]
    )
    nrm = r.random() < (0.45 if risk == "SIGNIFICANT_HARM" else 0.15)
    adults = [
        stranger(r, r.choice(("ALLEGED_PERPETRATOR", "OTHER_ADULT")), "associate", s.at.date(), 18, 35)
        for _ in range(r.randint(1, 2))
    ]
    details = {
        "exploitation_type": kind,
        "county_lines": criminal and r.random() < 0.5,
        "indicators": some(r, pool, 2, 4),
        "child_arrested": criminal and r.random() < 0.25,
        "nrm_referral_made": nrm,
        "nrm_referral_date": s.at.date() - timedelta(days=r.randint(0, 5)) if nrm else None,
        "police_operation": r.choice(data.OPERATIONS) if r.random() < 0.4 else None,
        "associated_adults": adults,
        "locations_of_concern": some(r, data.LOCATIONS_OF_CONCERN, 1, 2),
        "concern_summary": f"Intelligence suggests {kind.lower()} exploitation by older people (synthetic).",
    }
    narrative = f"{SYNTHETIC}Concern of {kind.lower()} exploitation raised after a stop in another area."
    return Draft(details, risk, narrative, parents(s))


BUILDERS_HEALTH_POLICE: dict[str, Builder] = {
    "EMERGENCY_ATTENDANCE": emergency_attendance,
    "HEALTH_SAFEGUARDING_CONCERN": health_safeguarding_concern,
    "WAS_NOT_BROUGHT": was_not_brought,
    "DOMESTIC_ABUSE_INCIDENT": domestic_abuse_incident,
    "MISSING_EPISODE": missing_episode,
    "EXPLOITATION_CONCERN": exploitation_concern,
}
