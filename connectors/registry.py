"""Which reader and mapping function a connector uses, by agency and format.

The one place that knows the agencies; the runtime itself does not. Agency packages are
imported only when chosen, so a police connector never loads the HL7 or XML readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.exceptions import ConnectorError
from connectors.runtime.records import ConnectorParts
from schemas.topics import AGENCIES

_HEALTH_FORMATS = ("fhir", "hl7")
_POLICE_FORMATS = ("csv", "json")


def _looks_like_hl7(path: Path) -> bool:
    """Whether a ``.txt`` or ``.dat`` file starts as HL7 v2 does (MSH, a batch header, MLLP framing)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8).removeprefix(b"\xef\xbb\xbf").lstrip(b"\x0b\r\n ")
    except OSError:
        return False
    return head.startswith((b"MSH", b"FHS", b"BHS"))


def _guess(source: Path, choices: tuple[str, ...], default: str) -> str:
    names = (
        [source.name] if source.is_file() else [p.name for p in source.iterdir()] if source.is_dir() else []
    )
    folder = source if source.is_dir() else source.parent
    for name in names:
        low = name.lower()
        if low.endswith((".hl7", ".er7")) and "hl7" in choices:
            return "hl7"
        if low.endswith((".txt", ".dat")) and "hl7" in choices and _looks_like_hl7(folder / name):
            return "hl7"
        if low.endswith(".xml") and "fhir" in choices:
            return "fhir"
        if low.endswith(".csv") and "csv" in choices:
            return "csv"
        if low.endswith((".json", ".ndjson", ".jsonl")):
            return "fhir" if "fhir" in choices else "json"
    return default


def file_parts(agency: str, source: Path, fmt: str | None, mapping: Path | None) -> ConnectorParts:
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
        return ConnectorParts(reader_for(compiled, chosen), PoliceMapper(compiled), chosen)
    if agency == "health":
        from connectors.health import FhirMapper, FhirReader, Hl7FileReader, Hl7Mapper, load_profile

        if fmt is not None and fmt not in _HEALTH_FORMATS:
            msg = f"The health connector reads fhir (JSON Bundles or NDJSON) or hl7 files, not {fmt}."
            raise ConnectorError(msg)
        profile = load_profile(mapping)
        chosen = fmt or _guess(source, _HEALTH_FORMATS, "fhir")
        if chosen == "fhir":
            return ConnectorParts(FhirReader(profile.patients_in_memory), FhirMapper(profile), chosen)
        return ConnectorParts(Hl7FileReader(), Hl7Mapper(profile), chosen)
    msg = f"There is no connector for {agency} yet."
    raise ConnectorError(msg)


#: The agencies, as the command line names them.
AGENCY_NAMES: tuple[str, ...] = tuple(agency.lower() for agency in AGENCIES)
#: Agencies whose returns restate everything: their runs publish only what changed.
SNAPSHOT_AGENCIES = ("education", "local_authority")
#: Agencies whose later records correct earlier ones (AMENDED; RETRACTED when they say so): a
#: CTF restates a pupil's attendance as it goes, which is news, not a correction.
CORRECTING_AGENCIES = ("local_authority", "police")
#: Snapshot agencies whose complete returns withdraw what they no longer have (RETRACTED).
WITHDRAWING_AGENCIES = ("local_authority",)


@dataclass(frozen=True, slots=True)
class LocalAuthorityOptions:
    """What the local-authority connector is told about its authority on the command line."""

    la_code: str | None = None
    xref: Path | None = None
    name: str | None = None
    contact_team: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    encoding: str | None = None
    period: str | None = None


def parts_for(
    agency: str,
    source: Path,
    fmt: str | None,
    mapping: Path | None = None,
    la: LocalAuthorityOptions | None = None,
) -> ConnectorParts:
    """The parts of a file connector for ``agency``; one sentence when they do not fit together."""
    agency = agency.lower()
    la = la or LocalAuthorityOptions()
    if la.xref is not None and agency != "local_authority":
        msg = "--xref is for the local authority connector."
        raise ConnectorError(msg)
    if la.period is not None and agency != "local_authority":
        msg = "--period is for the local authority connector's SSDA903 and family-help returns."
        raise ConnectorError(msg)
    if la.encoding is not None and agency != "local_authority":
        msg = "--encoding is for the local authority connector's SSDA903 tables."
        raise ConnectorError(msg)
    if agency == "education":
        from connectors.education import parts as education_parts

        return education_parts(fmt)
    if agency == "local_authority":
        from connectors.local_authority import parts as la_parts
        from connectors.local_authority import profile_from

        profile = profile_from(
            la.la_code, la.xref, la.name, la.contact_team, la.contact_phone, la.contact_email
        )
        return la_parts(fmt, profile, la.encoding, la.period)
    return file_parts(agency, source, fmt, mapping)
