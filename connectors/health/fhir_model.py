"""Light pydantic models of the FHIR R4 (UK Core) elements the health connector reads.

Why not a full FHIR model library: ``fhir.resources`` 8.3 (the maintained one on PyPI)
ships R5 by default and R4B, not R4, and parsing a small Encounter with it measured about
5,600 resources/s on one core here, before any mapping or Kafka work, below the connector's
5,000 resources/s target once those are added. These models validate only what the mapping
uses, ignore every other element, and parse about 70,000 resources/s. Element names are
FHIR's; ``class`` is ``class_`` in Python.
"""

from __future__ import annotations

import functools
from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.health.fhir_xml import XML_SHAPED

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANISATION_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ODS_SITE_SYSTEM = "https://fhir.nhs.uk/Id/ods-site-code"
SNOMED_SYSTEM = "http://snomed.info/sct"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ETHNIC_CATEGORY_URL = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"


def normalise_nhs_number(value: str) -> str:
    """An NHS number as written, with the spaces and dashes people write in it removed."""
    return value.replace(" ", "").replace("-", "").strip()


class Element(BaseModel):
    """Base of every model: unknown elements are ignored, values are not changed."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _xml_cardinality(cls, data: Any) -> Any:
        """Read from XML (``fhir_xml``), an element that occurs once is a single value: make it a
        list where this model has a list, and a one-item list single where it has not."""
        if not isinstance(data, dict) or XML_SHAPED not in data:
            return data
        lists = _list_fields(cls)
        out = {}
        for key, value in data.items():
            shape = lists.get(key)
            if shape is True and not isinstance(value, list):
                value = [value]
            elif shape is False and isinstance(value, list) and len(value) == 1:
                value = value[0]
            out[key] = value
        return out


@functools.cache
def _list_fields(model: type[BaseModel]) -> dict[str, bool]:
    """Each element name of a model (aliases included): whether it is a list."""
    return {
        field.alias or name: get_origin(field.annotation) is list
        for name, field in model.model_fields.items()
    }


class Coding(Element):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(Element):
    coding: list[Coding] = []
    text: str | None = None

    def code_in(self, system: str) -> Coding | None:
        """The first coding from ``system``."""
        return next((c for c in self.coding if c.system == system and c.code), None)


class Identifier(Element):
    system: str | None = None
    value: str | None = None
    type: CodeableConcept | None = None
    assigner: Reference | None = None


class Reference(Element):
    reference: str | None = None
    identifier: Identifier | None = None
    display: str | None = None


class Period(Element):
    start: str | None = None
    end: str | None = None


class HumanName(Element):
    use: str | None = None
    family: str | None = None
    given: list[str] = []


class Address(Element):
    use: str | None = None
    line: list[str] = []
    city: str | None = None
    postalCode: str | None = None


class Extension(Element):
    url: str | None = None
    valueCodeableConcept: CodeableConcept | None = None


class Annotation(Element):
    text: str | None = None


class Meta(Element):
    versionId: str | None = None
    lastUpdated: str | None = None


class Resource(Element):
    resourceType: str
    id: str | None = None
    meta: Meta | None = None
    #: Business identifiers (Encounter, Flag, Condition, Observation and Appointment have them).
    identifier: list[Identifier] = []

    @property
    def label(self) -> str:
        """``Type/id``, how other resources refer to it."""
        return f"{self.resourceType}/{self.id}"


class Patient(Resource):
    identifier: list[Identifier] = []
    name: list[HumanName] = []
    birthDate: str | None = None
    address: list[Address] = []
    generalPractitioner: list[Reference] = []
    extension: list[Extension] = []

    def local_ids(self, default_issuer: str | None) -> list[tuple[str, str]]:
        """The hospital's own patient ids as (issuer ODS code, id): identifiers of type ``MR``
        (medical record number) or a local-patient-identifier system; the issuer is the
        assigner's ODS code, else ``default_issuer`` (an id with neither is left out)."""
        out = []
        for ident in self.identifier:
            if not ident.value or ident.system == NHS_NUMBER_SYSTEM:
                continue
            typed = ident.type is not None and any(c.code in ("MR", "PI") for c in ident.type.coding)
            if not typed and "local-patient-identifier" not in (ident.system or ""):
                continue
            assigner = ident.assigner.identifier if ident.assigner else None
            issuer = assigner.value if assigner and assigner.value else default_issuer
            if issuer:
                out.append((issuer.strip().upper(), ident.value.strip()))
        return out

    def nhs_number(self) -> str | None:
        """The NHS number, spaces and dashes removed (``999 123 4567``, ``999-123-4567``)."""
        value = next((i.value for i in self.identifier if i.system == NHS_NUMBER_SYSTEM and i.value), None)
        return normalise_nhs_number(value) if value is not None else None


class Organization(Resource):
    identifier: list[Identifier] = []
    name: str | None = None


class Location(Resource):
    identifier: list[Identifier] = []
    name: str | None = None
    managingOrganization: Reference | None = None


class EncounterLocation(Element):
    location: Reference


class Hospitalization(Element):
    dischargeDisposition: CodeableConcept | None = None


class Encounter(Resource):
    status: str
    class_: Coding = Field(alias="class")
    subject: Reference | None = None
    period: Period | None = None
    serviceProvider: Reference | None = None
    location: list[EncounterLocation] = []
    reasonCode: list[CodeableConcept] = []
    hospitalization: Hospitalization | None = None


class Flag(Resource):
    status: str
    category: list[CodeableConcept] = []
    code: CodeableConcept
    subject: Reference
    period: Period | None = None


class Condition(Resource):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    category: list[CodeableConcept] = []
    code: CodeableConcept | None = None
    subject: Reference
    onsetDateTime: str | None = None
    recordedDate: str | None = None
    note: list[Annotation] = []

    @property
    def verification(self) -> str | None:
        """The first code of ``verificationStatus`` (``confirmed``, ``refuted``, ``entered-in-error``)."""
        status = self.verificationStatus
        return status.coding[0].code if status and status.coding else None


class Observation(Resource):
    status: str
    category: list[CodeableConcept] = []
    code: CodeableConcept
    subject: Reference | None = None
    effectiveDateTime: str | None = None
    issued: str | None = None
    valueString: str | None = None
    valueCodeableConcept: CodeableConcept | None = None
    note: list[Annotation] = []


class AppointmentParticipant(Element):
    actor: Reference | None = None
    status: str | None = None


class Appointment(Resource):
    status: str
    serviceType: list[CodeableConcept] = []
    specialty: list[CodeableConcept] = []
    start: str | None = None
    participant: list[AppointmentParticipant] = []


class OtherResource(Resource):
    """Any resource type the connector does not read."""


MODELS: dict[str, type[Resource]] = {
    model.__name__: model
    for model in (Patient, Organization, Location, Encounter, Flag, Condition, Observation, Appointment)
}


def parse_resource(data: Any) -> Resource:
    """The model for one resource; raises ``ValueError`` saying where it does not match, never the values."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        msg = "The resource has no resourceType."
        raise ValueError(msg)
    model = MODELS.get(data["resourceType"], OtherResource)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = f"The {data['resourceType']} does not match FHIR R4 at {where} ({first['type']})."
        raise ValueError(msg) from None
