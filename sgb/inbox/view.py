"""A delivered event as a practitioner reads it: who, what, when, from whom, and what was withheld.

Pure: built from the event's JSON shape and its ``withheld_fields``, no I/O. A field that
policy withheld is shown as "withheld by policy", never silently left out; a field that is
simply not recorded is left out (so an audience that may not see a confidential address
is not told that one exists). Escaping is the template's job (Jinja2 autoescape).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WITHHELD = "withheld by policy"
#: How the page says what a source did to an event it sent (an erased one shows no content).
CORRECTION_WORDS = {
    "AMENDED": "Amended by source: this is the corrected record.",
    "RETRACTED": "Withdrawn by source: entered in error or cancelled; do not act on it.",
    "ERASED": "Withdrawn by source and erased: its content has been removed.",
}

#: Event types in words, with what happened (POLICY.md's vocabulary table).
EVENT_WORDS: dict[str, tuple[str, str]] = {
    "EMERGENCY_ATTENDANCE": (
        "Emergency attendance",
        "The child attended an emergency department or urgent care.",
    ),
    "HEALTH_SAFEGUARDING_CONCERN": (
        "Health safeguarding concern",
        "A clinician raised a safeguarding concern.",
    ),
    "WAS_NOT_BROUGHT": ("Was not brought", "The child was repeatedly not brought to health appointments."),
    "DOMESTIC_ABUSE_INCIDENT": (
        "Domestic abuse incident",
        "Police attended domestic abuse where the child lives or was present.",
    ),
    "MISSING_EPISODE": ("Missing episode", "The child was reported missing, or returned."),
    "EXPLOITATION_CONCERN": ("Exploitation concern", "Concern of criminal or sexual exploitation."),
    "SCHOOL_SAFEGUARDING_CONCERN": (
        "School safeguarding concern",
        "A school recorded a concern about a pupil.",
    ),
    "ATTENDANCE_ALERT": ("Attendance alert", "Persistent or severe absence from school."),
    "CHILD_MISSING_EDUCATION": (
        "Child missing education",
        "A pupil left the roll with no known destination.",
    ),
    "REFERRAL_OUTCOME": ("Referral outcome", "The outcome of a referral to children's social care."),
    "CHILD_PROTECTION_PLAN": ("Child protection plan", "A child protection plan started or ended."),
    "LOOKED_AFTER_STATUS": ("Looked-after status", "The child became looked after, or stopped being."),
    "FAMILY_HELP_CASE": ("Family help case", "A family help case opened or closed."),
    "STRATEGY_DISCUSSION": (
        "Strategy discussion",
        "Partners are called to a section 47 strategy discussion.",
    ),
}

#: Lawful bases in words (schemas/vocabulary.py LawfulBasis).
LAWFUL_BASIS_WORDS = {
    "PUBLIC_TASK_SAFEGUARDING": "Public task: safeguarding (UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18)",
    "LEGAL_OBLIGATION": "Legal obligation (UK GDPR Art 6(1)(c))",
    "CONSENT": "Consent (UK GDPR Art 6(1)(a))",
    "SAFEGUARDING_OVERRIDE": "Safeguarding override: risk of significant harm, so consent is not the basis",
}
CONSENT_WORDS = {
    "GIVEN": "Given",
    "REFUSED": "Refused",
    "WITHDRAWN": "Withdrawn",
    "NOT_SOUGHT": "Not sought",
    "NO_RECORD": "No consent record",
}

_ACRONYMS = {
    "nhs": "NHS",
    "upn": "UPN",
    "urn": "URN",
    "ods": "ODS",
    "gp": "GP",
    "dash": "DASH",
    "nrm": "NRM",
    "la": "LA",
    "send": "SEND",
    "ehc": "EHC",
    "ppu": "PPU",
    "mash": "MASH",
    "cad": "CAD",
    "ed": "ED",
    "id": "id",
    "icb": "ICB",
    "dvpn": "DVPN",
    "dvpo": "DVPO",
    "sen": "SEN",
}
_LABELS = {
    "related_people": "People involved",
    "narrative": "Narrative",
    "given_name": "Given name",
    "family_name": "Family name",
    "date_of_birth": "Date of birth",
    "police_person_reference": "Police reference",
    "la_child_id": "Local authority child id",
    "school_urn": "School (URN)",
    "gp_practice_ods": "GP practice (ODS)",
    "local_authority_code": "Local authority",
    "confidential_address": "Confidential address",
    "section_47": "Section 47",
    "previous_attendances_12_months": "Attendances in the last 12 months",
    "episodes_last_12_months": "Episodes in the last 12 months",
}
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
try:
    _LONDON: Any = ZoneInfo("Europe/London")
except ZoneInfoNotFoundError:  # no time zone data: show UTC, and say so
    _LONDON = None


@dataclass(frozen=True, slots=True)
class Field:
    """One labelled value; ``withheld`` marks a value policy kept from this hub."""

    label: str
    value: str
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class DecisionView:
    """Why the hub received the event, from the audit record of the filter's decision."""

    outcome: str
    rule: str | None
    rule_description: str | None
    lawful_basis: str | None
    consent_state: str | None
    policy_version: str
    decided_at: str


@dataclass(slots=True)
class EventView:
    """Everything the page shows about one event."""

    event_id: str
    title: str
    description: str
    risk: str
    risk_level: str
    child_name: str
    born: str
    when: str
    recorded: str
    delivered: str
    source: str
    who: list[Field] = field(default_factory=list)
    what: list[Field] = field(default_factory=list)
    people: list[list[Field]] = field(default_factory=list)
    people_withheld: bool = False
    narrative: Field | None = None
    contact: list[Field] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    decision: DecisionView | None = None
    #: What the source said of the event since (principle 10), in words; None when nothing.
    correction: str | None = None


def label(name: str) -> str:
    """A field name in words: ``dash_risk_level`` -> ``DASH risk level``."""
    if name in _LABELS:
        return _LABELS[name]
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    first = words[0] if words[0].isupper() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def path_label(path: str) -> str:
    """A withheld path in words: ``child.address`` -> ``Child: address``, ``details.offence_types`` ->
    ``Offence types``."""
    parts = [p for p in path.split(".") if p != "details"] or ["details"]
    if len(parts) == 1:
        return label(parts[0])
    last = label(parts[-1])
    if not last.split()[0].isupper():
        last = last[0].lower() + last[1:]
    return f"{label(parts[0])}: {last}"


def _enum_symbols() -> frozenset[str]:
    import schemas

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                found.update(node["symbols"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas.load("SafeguardingEvent"))
    walk(schemas.load("AuditDecision"))
    return frozenset(found)


_SYMBOLS = _enum_symbols()


def words(value: str) -> str:
    """An enum symbol of the catalogue in words (``SIGNIFICANT_HARM`` -> ``Significant harm``);
    any other text unchanged."""
    if value not in _SYMBOLS and value not in EVENT_WORDS:
        return value
    return label(value.lower())


def when(value: str | None) -> str:
    """An ISO 8601 time in London time, for example ``Fri 20 Nov 2026, 21:30 GMT``."""
    if not value:
        return "not recorded"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if _LONDON is None:
        return moment.strftime("%a %d %b %Y, %H:%M UTC")
    local = moment.astimezone(_LONDON)
    return local.strftime("%a %d %b %Y, %H:%M ") + (local.tzname() or "")


def day(value: str | None) -> str:
    """A ``YYYY-MM-DD`` date in words, for example ``1 June 2015``."""
    if not value:
        return "not recorded"
    try:
        found = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{found.day} {found.strftime('%B %Y')}"


def text(value: Any) -> str:
    """Any JSON value as one line a person can read."""
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        if _TIME.match(value):
            return when(value)
        if _DATE.match(value):
            return day(value)
        return words(value)
    if isinstance(value, Mapping):
        if {"line1", "postcode"} <= set(value):
            return ", ".join(str(value[k]) for k in ("line1", "line2", "town", "postcode") if value.get(k))
        shown = [f"{label(k)}: {text(v)}" for k, v in value.items() if v not in (None, [], {})]
        return "; ".join(shown) or "not recorded"
    if isinstance(value, Sequence):
        return " | ".join(text(v) for v in value) if value else "none"
    return str(value)


def _fields(
    record: Mapping[str, Any],
    prefix: str,
    withheld: Sequence[str],
    generalised: Mapping[str, str],
    skip: tuple[str, ...] = (),
) -> list[Field]:
    out = []
    for name, value in record.items():
        path = f"{prefix}.{name}"
        if name in skip:
            continue
        if any(path == w or path.startswith(w + ".") for w in withheld):
            out.append(Field(label(name), WITHHELD, withheld=True))
        elif path in generalised:
            out.append(Field(label(name), f"{generalised[path]} (generalised by policy)"))
        elif value not in (None, [], {}):
            out.append(Field(label(name), text(value)))
    return out


def build(
    event: Mapping[str, Any],
    withheld_fields: Sequence[str],
    delivered_at: str | None = None,
    decision: DecisionView | None = None,
) -> EventView:
    """The view of one delivered event (its JSON shape) for the page."""
    withheld = list(withheld_fields)
    generalised = dict(event.get("generalised_fields") or {})
    child = event.get("child") or {}
    source = event.get("source") or {}
    event_type = str(event.get("event_type", ""))
    title, description = EVENT_WORDS.get(event_type, (words(event_type), ""))
    name = " ".join(p for p in (child.get("given_name"), child.get("family_name")) if p)
    if not name:
        name = "Name withheld by policy" if "child.given_name" in withheld else "Name not recorded"
    who = _fields(child, "child", withheld, generalised, skip=("given_name", "family_name"))
    born = next((f for f in who if f.label == "Date of birth"), None)
    if born is None:
        born = Field("Date of birth", "not recorded")
        who.insert(0, born)
    people_withheld = "related_people" in withheld
    people = [_fields(p, "related_people", withheld, generalised) for p in event.get("related_people") or []]
    narrative = None
    if "narrative" in withheld:
        narrative = Field("Narrative", WITHHELD, withheld=True)
    elif event.get("narrative"):
        narrative = Field("Narrative", str(event["narrative"]))
    contact = (
        _fields(source["contact"], "source.contact", withheld, generalised)
        if isinstance(source.get("contact"), Mapping)
        else []
    )
    organisation = source.get("organisation_name") or source.get("organisation") or "unknown organisation"
    return EventView(
        event_id=str(event.get("event_id", "")),
        title=title,
        description=description,
        risk=words(str(event.get("risk", ""))),
        risk_level=str(event.get("risk", "")).lower(),
        child_name=name,
        born=born.value,
        when=when(event.get("occurred_at")),
        recorded=when(event.get("recorded_at")),
        delivered=when(delivered_at),
        source=f"{words(str(source.get('agency', '')))}: {organisation}",
        who=who,
        what=_fields(event.get("details") or {}, "details", withheld, generalised),
        people=people,
        people_withheld=people_withheld,
        narrative=narrative,
        contact=contact,
        withheld=[path_label(p) for p in withheld],
        decision=decision,
        correction=CORRECTION_WORDS.get(str((event.get("correction") or {}).get("kind"))),
    )


def decision_view(
    outcome: str,
    rule: str | None,
    lawful_basis: str | None,
    consent_state: str | None,
    policy_version: str,
    decided_at: str,
    rule_description: str | None = None,
) -> DecisionView:
    """The audit decision in words."""
    return DecisionView(
        outcome="Shared with you" if outcome == "SHARE" else "Withheld from you",
        rule=rule,
        rule_description=rule_description,
        lawful_basis=LAWFUL_BASIS_WORDS.get(lawful_basis, lawful_basis) if lawful_basis else None,
        consent_state=(
            CONSENT_WORDS.get(consent_state, consent_state)
            if consent_state
            else "Not considered (consent is not the basis)"
        ),
        policy_version=policy_version,
        decided_at=when(decided_at),
    )
