"""The local-authority connector: the CIN census, SSDA903 extracts and the case system's
family help and consent exports, published as changes (see :mod:`connectors.runtime.snapshots`) as
REFERRAL_OUTCOME, CHILD_PROTECTION_PLAN, STRATEGY_DISCUSSION, LOOKED_AFTER_STATUS and
FAMILY_HELP_CASE events, and ConsentRecords on ``sg.consent.v1``."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

from connectors.exceptions import ConnectorError
from connectors.local_authority.casesystem import CaseSystemReader, ConsentDelivery
from connectors.local_authority.cin_census import CinCensusReader
from connectors.local_authority.mapping import LaMapper
from connectors.local_authority.profile import LaProfile, checked_la_code, load_xref
from connectors.local_authority.ssda903 import Ssda903Reader
from connectors.runtime.records import ConnectorParts

FORMATS = ("cin", "ssda903", "family-help", "consent")
SYSTEMS = {"cin": "cin-census", "ssda903": "ssda903", "family-help": "case-system", "consent": "case-system"}

__all__ = [
    "FORMATS",
    "CaseSystemReader",
    "CinCensusReader",
    "ConsentDelivery",
    "LaMapper",
    "LaProfile",
    "Ssda903Reader",
    "load_xref",
    "parts",
]


def parts(
    fmt: str | None, profile: LaProfile, encoding: str | None = None, period: str | None = None
) -> ConnectorParts:
    """The reader, the (snapshot-free) mapping function and the format for an LA source;
    ``encoding`` sets the SSDA903 tables' encoding (detected when None), ``period`` the
    collection year an SSDA903 extract or family-help export is complete for (the CIN census
    header says its own).

    Raises :class:`ConnectorError` in one sentence when the format or authority is missing.
    """
    if fmt is None:
        msg = f"The local authority connector needs --format, one of {', '.join(FORMATS)}."
        raise ConnectorError(msg)
    if fmt not in FORMATS:
        msg = f"The local authority connector reads {', '.join(FORMATS)}, not {fmt}."
        raise ConnectorError(msg)
    if encoding is not None:
        if fmt != "ssda903":
            msg = "--encoding is for SSDA903 tables (--format ssda903); the other returns say theirs."
            raise ConnectorError(msg)
        try:
            codecs.lookup(encoding)
        except LookupError:
            msg = f"--encoding {encoding} is not an encoding Python knows (for example cp1252 or utf-16)."
            raise ConnectorError(msg) from None
    if period is not None and fmt not in ("ssda903", "family-help"):
        msg = "--period is for SSDA903 extracts and family-help exports; a CIN census header names its year."
        raise ConnectorError(msg)
    reader: Any
    if fmt == "cin":
        reader = CinCensusReader(checked_la_code(profile.la_code) if profile.la_code else None)
    elif fmt == "ssda903":
        reader = Ssda903Reader(checked_la_code(profile.la_code), encoding=encoding, period=period)
    else:
        reader = CaseSystemReader(fmt, checked_la_code(profile.la_code), period)
    return ConnectorParts(reader, LaMapper(profile, SYSTEMS[fmt]), fmt)


def profile_from(
    la_code: str | None,
    xref: Path | None,
    name: str | None = None,
    team: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> LaProfile:
    """An LaProfile from command-line options."""
    options: dict[str, Any] = {"la_code": la_code, "name": name, "xref": load_xref(xref) if xref else {}}
    if team:
        options["contact_team"] = team
    return LaProfile(**options, contact_phone=phone, contact_email=email)
