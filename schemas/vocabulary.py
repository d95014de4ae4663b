"""The project's vocabulary, exactly as POLICY.md names it."""

from __future__ import annotations

from enum import StrEnum


class Agency(StrEnum):
    HEALTH = "HEALTH"
    POLICE = "POLICE"
    EDUCATION = "EDUCATION"
    LOCAL_AUTHORITY = "LOCAL_AUTHORITY"


class EventType(StrEnum):
    EMERGENCY_ATTENDANCE = "EMERGENCY_ATTENDANCE"
    HEALTH_SAFEGUARDING_CONCERN = "HEALTH_SAFEGUARDING_CONCERN"
    WAS_NOT_BROUGHT = "WAS_NOT_BROUGHT"
    DOMESTIC_ABUSE_INCIDENT = "DOMESTIC_ABUSE_INCIDENT"
    MISSING_EPISODE = "MISSING_EPISODE"
    EXPLOITATION_CONCERN = "EXPLOITATION_CONCERN"
    SCHOOL_SAFEGUARDING_CONCERN = "SCHOOL_SAFEGUARDING_CONCERN"
    ATTENDANCE_ALERT = "ATTENDANCE_ALERT"
    CHILD_MISSING_EDUCATION = "CHILD_MISSING_EDUCATION"
    REFERRAL_OUTCOME = "REFERRAL_OUTCOME"
    CHILD_PROTECTION_PLAN = "CHILD_PROTECTION_PLAN"
    LOOKED_AFTER_STATUS = "LOOKED_AFTER_STATUS"
    FAMILY_HELP_CASE = "FAMILY_HELP_CASE"
    STRATEGY_DISCUSSION = "STRATEGY_DISCUSSION"


class Risk(StrEnum):
    SIGNIFICANT_HARM = "SIGNIFICANT_HARM"
    NEEDS_SUPPORT = "NEEDS_SUPPORT"
    INFORMATION = "INFORMATION"


class Audience(StrEnum):
    MASH = "MASH"
    FAMILY_HELP = "FAMILY_HELP"
    SCHOOL_DSL = "SCHOOL_DSL"
    GP = "GP"
    HEALTH_SAFEGUARDING = "HEALTH_SAFEGUARDING"
    EMERGENCY_CARE = "EMERGENCY_CARE"
    POLICE_PPU = "POLICE_PPU"


class Tag(StrEnum):
    METADATA = "METADATA"
    IDENTIFIER = "IDENTIFIER"
    NAME = "NAME"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    CONTACT = "CONTACT"
    CONFIDENTIAL_ADDRESS = "CONFIDENTIAL_ADDRESS"
    HEALTH = "HEALTH"
    MENTAL_HEALTH = "MENTAL_HEALTH"
    SEXUAL_HEALTH = "SEXUAL_HEALTH"
    CRIMINAL_OFFENCE = "CRIMINAL_OFFENCE"
    THIRD_PARTY = "THIRD_PARTY"
    SPECIAL_CATEGORY = "SPECIAL_CATEGORY"
    NARRATIVE = "NARRATIVE"
    CASE_DETAIL = "CASE_DETAIL"


class ConsentState(StrEnum):
    GIVEN = "GIVEN"
    REFUSED = "REFUSED"
    WITHDRAWN = "WITHDRAWN"
    NOT_SOUGHT = "NOT_SOUGHT"


#: What the audit record says when there is no consent record at all.
NO_RECORD = "NO_RECORD"


class Purpose(StrEnum):
    FAMILY_HELP = "FAMILY_HELP"


class RedactionAction(StrEnum):
    REMOVE = "REMOVE"
    MASK = "MASK"
    GENERALISE = "GENERALISE"
    PSEUDONYMISE = "PSEUDONYMISE"


class Outcome(StrEnum):
    SHARE = "SHARE"
    WITHHOLD = "WITHHOLD"


class CorrectionKind(StrEnum):
    """What a source says about an event it sent (principle 10)."""

    AMENDED = "AMENDED"
    RETRACTED = "RETRACTED"
    ERASED = "ERASED"


class Reason(StrEnum):
    """Why a delivery was withheld (a share has reason ``granted``)."""

    GRANTED = "granted"
    NO_RULE = "no_rule"
    CONSENT_NOT_GIVEN = "consent_not_given"
    RECIPIENT_UNKNOWN = "recipient_unknown"
    RECIPIENT_NOT_ONBOARDED = "recipient_not_onboarded"
    CONDITION_NOT_MET = "condition_not_met"
    REDACTION_FAILED = "redaction_failed"


class LawfulBasis(StrEnum):
    """The UK GDPR / DPA 2018 basis a rule relies on."""

    PUBLIC_TASK_SAFEGUARDING = "PUBLIC_TASK_SAFEGUARDING"  # Art 6(1)(e); DPA 2018 Sch 1 para 18
    LEGAL_OBLIGATION = "LEGAL_OBLIGATION"  # Art 6(1)(c), e.g. Children Act 1989 s47
    CONSENT = "CONSENT"  # Art 6(1)(a)
    SAFEGUARDING_OVERRIDE = "SAFEGUARDING_OVERRIDE"  # significant harm: consent not the basis


#: Principle 5: tags no rule can lift, and who alone may ever receive them.
HARD_LIMITS: dict[Tag, frozenset[Audience]] = {
    Tag.CONFIDENTIAL_ADDRESS: frozenset({Audience.MASH, Audience.POLICE_PPU}),
    Tag.SEXUAL_HEALTH: frozenset(set(Audience) - {Audience.SCHOOL_DSL}),
}
