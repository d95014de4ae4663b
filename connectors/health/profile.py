"""The health connector's mapping file: who publishes, what risk each event type carries, and
which clinical codes mean a safeguarding concern.

FHIR and HL7 v2 already say what a record is, so health needs no column mapping; what they
do not say is the publisher's identity, the risk the trust wants each event type to carry,
or which codes its systems use for safeguarding concerns. All of it is optional::

    organisation: RAL                # ODS code of the publishing trust
    organisation_name: Royal Free London NHS Foundation Trust
    contact: {team: Safeguarding Children Team, phone: "020 7946 0001"}
    risk: {HEALTH_SAFEGUARDING_CONCERN: SIGNIFICANT_HARM}
    concern_codes: {"1064961000000107": DOMESTIC_ABUSE}
    discharge_codes: {"01": DISCHARGED_HOME}

Without ``organisation``, the publisher is the site the record names (FHIR
``Encounter.serviceProvider``, HL7 ``MSH-4``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.exceptions import MappingFileError

HealthEventType = Literal["EMERGENCY_ATTENDANCE", "HEALTH_SAFEGUARDING_CONCERN", "WAS_NOT_BROUGHT"]
RiskName = Literal["SIGNIFICANT_HARM", "NEEDS_SUPPORT", "INFORMATION"]
ConcernCategory = Literal[
    "NEGLECT",
    "PHYSICAL_ABUSE",
    "EMOTIONAL_ABUSE",
    "SEXUAL_ABUSE",
    "DOMESTIC_ABUSE",
    "CHILD_ON_CHILD_ABUSE",
    "CRIMINAL_EXPLOITATION",
    "SEXUAL_EXPLOITATION",
    "TRAFFICKING_OR_MODERN_SLAVERY",
    "ONLINE_HARM",
    "RADICALISATION",
    "FEMALE_GENITAL_MUTILATION",
    "HONOUR_BASED_ABUSE_OR_FORCED_MARRIAGE",
    "FABRICATED_OR_INDUCED_ILLNESS",
    "OTHER",
]
DischargeOutcome = Literal[
    "DISCHARGED_HOME",
    "ADMITTED",
    "TRANSFERRED_TO_ANOTHER_HOSPITAL",
    "DISCHARGED_INTO_CARE_OF_ANOTHER_AGENCY",
    "LEFT_BEFORE_TREATMENT_COMPLETE",
    "DIED",
    "OTHER",
]
UrgentCareSetting = Literal[
    "EMERGENCY_DEPARTMENT",
    "PAEDIATRIC_EMERGENCY_DEPARTMENT",
    "URGENT_TREATMENT_CENTRE",
    "MINOR_INJURY_UNIT",
    "OTHER",
]

#: SNOMED CT concepts that mark a record as a child safeguarding concern (from the RCGP
#: safeguarding coding guidance): child is cause for safeguarding concern; child in family is
#: safeguarding concern; unborn child is cause for safeguarding concern; subject to child
#: protection plan; child at risk; carer behaviour is cause for safeguarding concern.
SAFEGUARDING_CODES = (
    "836881000000105",
    "1064961000000107",
    "878111000000109",
    "342191000000101",
    "160877008",
    "1076171000000104",
)

DEFAULT_RISK: dict[str, RiskName] = {
    "EMERGENCY_ATTENDANCE": "INFORMATION",
    "HEALTH_SAFEGUARDING_CONCERN": "NEEDS_SUPPORT",
    "WAS_NOT_BROUGHT": "NEEDS_SUPPORT",
}


class Contact(BaseModel):
    """Who a recipient calls about the trust's events (an organisational contact)."""

    model_config = ConfigDict(extra="forbid")

    team: str
    phone: str | None = None
    email: str | None = None


class HealthProfile(BaseModel):
    """A health connector's mapping file; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    organisation: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,10}$")
    organisation_name: str | None = None
    system: str | None = None
    contact: Contact | None = None
    risk: dict[HealthEventType, RiskName] = Field(default_factory=dict)
    timezone: str = "Europe/London"
    setting: UrgentCareSetting = "EMERGENCY_DEPARTMENT"
    safeguarding_codes: list[str] = Field(default_factory=lambda: list(SAFEGUARDING_CODES))
    concern_codes: dict[str, ConcernCategory] = Field(default_factory=dict)
    discharge_codes: dict[str, DischargeOutcome] = Field(default_factory=dict)
    patients_in_memory: int = Field(default=100_000, ge=1, le=10_000_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = "is not a time zone name such as Europe/London"
            raise ValueError(msg) from None
        return value

    @field_validator("concern_codes", "discharge_codes", mode="before")
    @classmethod
    def _text_keys(cls, value: object) -> object:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def risk_for(self, event_type: str) -> str:
        """The risk events of this type carry."""
        for name, risk in self.risk.items():
            if name == event_type:
                return risk
        return DEFAULT_RISK[event_type]

    def is_safeguarding_code(self, code: str | None) -> bool:
        """Whether a SNOMED CT code marks a safeguarding concern."""
        return code is not None and (code in self.safeguarding_codes or code in self.concern_codes)


def load_profile(path: Path | None) -> HealthProfile:
    """The profile in ``path``, or the defaults when None; raises ``MappingFileError`` in one sentence."""
    if path is None:
        return HealthProfile()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        msg = f"Mapping file {path} does not exist."
        raise MappingFileError(msg) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        msg = f"Mapping file {path} is not readable YAML."
        raise MappingFileError(msg) from None
    if not isinstance(document, dict):
        msg = f"Mapping file {path} must be a YAML mapping of settings."
        raise MappingFileError(msg)
    try:
        return HealthProfile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        problem = (
            "is not a setting a health mapping file has"
            if first["type"] == "extra_forbidden"
            else first["msg"].removeprefix("Value error, ")
        )
        msg = f"Mapping file {path} is invalid at {field}: {problem.rstrip('.')}."
        raise MappingFileError(msg) from None
