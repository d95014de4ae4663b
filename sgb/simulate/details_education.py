"""``sgb simulate``: details builders for education events (a school's designated safeguarding
lead, attendance, children missing education)."""

from __future__ import annotations

from datetime import date, timedelta

from sgb.simulate import data
from sgb.simulate.scene import SYNTHETIC, Draft, Scene, parents, pick_risk, some


def school_safeguarding_concern(s: Scene) -> Draft:
    r, age = s.rng, s.age
    risk = pick_risk(r, "SCHOOL_SAFEGUARDING_CONCERN")
    pool = [
        "NEGLECT",
        "NEGLECT",
        "EMOTIONAL_ABUSE",
        "PHYSICAL_ABUSE",
        "DOMESTIC_ABUSE",
        "CHILD_ON_CHILD_ABUSE",
    ]
    if age >= 9:
        pool += ["ONLINE_HARM", "OTHER"]
    if age >= 11:
        pool += ["CRIMINAL_EXPLOITATION", "SEXUAL_EXPLOITATION", "RADICALISATION"]
    categories = sorted(set(some(r, pool, 1, 2)))
    if risk == "SIGNIFICANT_HARM":
        actions = ["REFERRED_TO_CHILDRENS_SOCIAL_CARE"] + (["REFERRED_TO_POLICE"] if r.random() < 0.3 else [])
    elif risk == "NEEDS_SUPPORT":
        actions = some(
            r, ("SUPPORT_IN_SCHOOL", "EARLY_HELP_OFFERED", "PARENTS_INFORMED", "REFERRED_TO_HEALTH"), 1, 2
        )
    else:
        actions = ["RECORDED_AND_MONITORED"]
    about = categories[0].lower().replace("_", " ")
    details = {
        "recorded_by_role": r.choices(
            ("TEACHER", "SUPPORT_STAFF", "DESIGNATED_SAFEGUARDING_LEAD", "DEPUTY_SAFEGUARDING_LEAD", "OTHER"),
            weights=(35, 20, 25, 15, 5),
        )[0],
        "concern_categories": categories,
        "disclosure_made": r.random() < 0.3,
        "injuries_observed": "PHYSICAL_ABUSE" in categories and r.random() < 0.7,
        "mental_health_concern": age >= 8 and r.random() < 0.25,
        "send_status": s.child.send_status,
        "actions_taken": actions,
        "description": f"Staff noticed a change in the pupil linked to {about} (synthetic).",
    }
    related = parents(s) if "PARENTS_INFORMED" in actions else []
    narrative = f"{SYNTHETIC}Concern logged by school staff and passed to the DSL."
    return Draft(details, risk, narrative, related)


def _weekdays(start: date, end: date) -> int:
    return sum(1 for n in range((end - start).days + 1) if (start + timedelta(days=n)).weekday() < 5)


def attendance_alert(s: Scene) -> Draft:
    r = s.rng
    risk = pick_risk(r, "ATTENDANCE_ALERT")
    period_end = s.at.date() - timedelta(days=r.randint(1, 3))
    period_start = period_end - timedelta(weeks=r.randint(6, 13))
    possible = 2 * _weekdays(period_start, period_end)
    percentage = {
        "SIGNIFICANT_HARM": r.uniform(20.0, 50.0),
        "NEEDS_SUPPORT": r.uniform(55.0, 88.0),
        "INFORMATION": r.uniform(85.0, 90.0),
    }[risk]
    attended = int(possible * percentage / 100)
    missed = possible - attended
    unauthorised = int(missed * r.uniform(0.3, 0.9))
    illness = int((missed - unauthorised) * r.uniform(0.5, 1.0))
    details = {
        "period_start": period_start,
        "period_end": period_end,
        "academic_year": data.academic_year(period_end),
        "alert_level": "SEVERE" if missed * 2 >= possible else "PERSISTENT",
        "attendance_percentage": round(100.0 * attended / possible, 1),
        "possible_sessions": possible,
        "sessions_missed": missed,
        "unauthorised_sessions": unauthorised,
        "illness_or_medical_sessions": illness,
        "school_action": r.choice(
            (
                "Attendance meeting with parents held (synthetic).",
                "Attendance support plan agreed (synthetic).",
                "Home visit by the attendance officer (synthetic).",
            )
        ),
    }
    narrative = f"{SYNTHETIC}Attendance {details['attendance_percentage']}% this period."
    return Draft(details, risk, narrative, parents(s))


_DESTINATIONS = {
    "MOVED_ABROAD_UNCONFIRMED": "Believed to have travelled abroad; country not confirmed (synthetic).",
    "MOVED_DESTINATION_UNKNOWN": "Neighbours say the family moved out; no forwarding address (synthetic).",
    "DID_NOT_ARRIVE_AT_NEW_SCHOOL": "Expected at a school in another area but never arrived (synthetic).",
}


def child_missing_education(s: Scene) -> Draft:
    r = s.rng
    reason = r.choices(
        (
            "CONTINUOUS_UNAUTHORISED_ABSENCE",
            "FAILED_TO_RETURN_FROM_LEAVE",
            "MOVED_DESTINATION_UNKNOWN",
            "MOVED_ABROAD_UNCONFIRMED",
            "DID_NOT_ARRIVE_AT_NEW_SCHOOL",
            "OTHER",
        ),
        weights=(30, 15, 25, 15, 10, 5),
    )[0]
    risk = pick_risk(r, "CHILD_MISSING_EDUCATION")
    today = s.at.date()
    details = {
        "missing_education_reason": reason,
        "left_roll_date": today + timedelta(days=r.randint(-5, 10)),
        # Which regulation applies is for the school to cite; the simulator does not guess.
        "removal_ground": None,
        "last_attended_date": today - timedelta(days=r.randint(10, 40)),
        "last_known_destination": _DESTINATIONS.get(reason),
        "enquiries_made": "Phoned parents, home visit, checked with the admissions team (synthetic).",
        "siblings_also_missing": r.random() < 0.4,
        "local_authority_notified_at": s.at + timedelta(minutes=r.randint(5, 240)),
    }
    narrative = f"{SYNTHETIC}Pupil to be removed from roll with no known destination after enquiries."
    return Draft(details, risk, narrative, parents(s))


BUILDERS_EDUCATION = {
    "SCHOOL_SAFEGUARDING_CONCERN": school_safeguarding_concern,
    "ATTENDANCE_ALERT": attendance_alert,
    "CHILD_MISSING_EDUCATION": child_missing_education,
}
