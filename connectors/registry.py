"""Which reader and mapping function a file connector uses, by agency and format.

The one place that knows the agencies; the runtime itself does not. Agency packages are
imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path

from connectors.exceptions import ConnectorError
from connectors.runtime.readers import Reader
from connectors.runtime.records import MapRecord

_HEALTH_FORMATS = ("fhir", "hl7")
_POLICE_FORMATS = ("csv", "json")


def _guess(source: Path, choices: tuple[str, ...], default: str) -> str:
    names = (
        [source.name] if source.is_file() else [p.name for p in source.iterdir()] if source.is_dir() else []
    )
    for name in names:
        low = name.lower()
        if low.endswith((".hl7", ".er7")) and "hl7" in choices:
            return "hl7"
        if low.endswith(".csv") and "csv" in choices:
            return "csv"
        if low.endswith((".json", ".ndjson", ".jsonl")):
            return "fhir" if "fhir" in choices else "json"
    return default


def file_parts(
    agency: str, source: Path, fmt: str | None, mapping: Path | None
) -> tuple[Reader, MapRecord, str]:
    """The reader, the mapping function and the format for a file source.

    Raises ``ConnectorError`` (or ``MappingFileError``) in one sentence when the agency,
    format and mapping file do not fit together.
    """
    if agency == "police":
        from connectors.police import PoliceMapper, load_mapping, reader_for

        if mapping is None:
            msg = "The police connector needs --mapping FILE (examples in connectors/mappings/)."
            raise ConnectorError(msg)
        if fmt is not None and fmt not in _POLICE_FORMATS:
            msg = f"The police connector reads csv or json exports, not {fmt}."
            raise ConnectorError(msg)
        compiled = load_mapping(mapping)
        chosen = fmt or compiled.format or _guess(source, _POLICE_FORMATS, "csv")
        return reader_for(compiled, chosen), PoliceMapper(compiled), chosen
    if agency == "health":
        from connectors.health import FhirMapper, FhirReader, Hl7FileReader, Hl7Mapper, load_profile

        if fmt is not None and fmt not in _HEALTH_FORMATS:
            msg = f"The health connector reads fhir (JSON Bundles or NDJSON) or hl7 files, not {fmt}."
            raise ConnectorError(msg)
        profile = load_profile(mapping)
        chosen = fmt or _guess(source, _HEALTH_FORMATS, "fhir")
        if chosen == "fhir":
            return FhirReader(profile.patients_in_memory), FhirMapper(profile), chosen
        return Hl7FileReader(), Hl7Mapper(profile), chosen
    msg = f"There is no connector for {agency} yet."
    raise ConnectorError(msg)
