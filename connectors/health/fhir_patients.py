"""The Patient a FHIR reference names, found in the reader's context however the reference
names it: ``Patient/id``, an absolute URL, a ``fullUrl``, a logical reference by identifier or
a conditional reference ``Patient?identifier=system|value``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from connectors.health.fhir_model import NHS_NUMBER_SYSTEM, Patient, Reference, normalise_nhs_number
from connectors.health.fhir_reader import FhirContext

_LITERAL = re.compile(r"(?:^|/)(Patient)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def find_patient(ref: Reference, context: FhirContext) -> Patient | None:
    """The Patient a reference names, however it names it, or None."""
    target = ref.reference
    if target:
        found = context.patients.get(target)
        if found is not None:
            return found
        literal = _LITERAL.search(target)
        if literal is not None:
            found = context.patients.get(f"Patient/{literal.group(2)}")
            if found is not None:
                return found
        if target.startswith("Patient?"):
            for value in parse_qs(target[len("Patient?") :]).get("identifier", []):
                system, _, code = value.rpartition("|")
                found = _by_identifier(system, code, context)
                if found is not None:
                    return found
    if ref.identifier is not None and ref.identifier.value:
        return _by_identifier(ref.identifier.system or "", ref.identifier.value, context)
    return None


def _by_identifier(system: str, value: str, context: FhirContext) -> Patient | None:
    if system == NHS_NUMBER_SYSTEM or "nhs-number" in system:
        return context.patients.get(f"nhs:{normalise_nhs_number(value)}")
    return context.patients.get(f"id:{system}|{value}")
