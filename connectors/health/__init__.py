"""The health connector: FHIR R4 (UK Core) files and HL7 v2 ADT (files, or MLLP from a hospital
integration engine) to EMERGENCY_ATTENDANCE, HEALTH_SAFEGUARDING_CONCERN and WAS_NOT_BROUGHT."""

from __future__ import annotations

from connectors.health.fhir_mapping import FhirMapper
from connectors.health.fhir_reader import FhirReader
from connectors.health.hl7_mapping import Hl7Mapper
from connectors.health.hl7v2 import Hl7Message
from connectors.health.hl7v2_read import Hl7FileReader
from connectors.health.profile import HealthProfile, load_profile

__all__ = [
    "FhirMapper",
    "FhirReader",
    "HealthProfile",
    "Hl7FileReader",
    "Hl7Mapper",
    "Hl7Message",
    "load_profile",
]
