"""Who the authority is, how partners reach it, and where NHS numbers come from.

The census and SSDA903 returns carry the authority's own child id and the UPN, never the
NHS number. The NHS number comes from the case system's export (a column) or from a
cross-reference file (``--xref FILE``: CSV with the header ``LAchildID,NHSnumber``). A child
with neither is published keyed by the authority's id (``la:<code>:<id>``) and counted as
unmatched in the run's summary.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.exceptions import ConnectorError
from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import validate_la_code, validate_nhs_number

TIMEZONE = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class LaProfile:
    """One local authority's connector settings.

    Args:
        la_code: the DfE three-digit code (also read from a census header when not given).
        name: the authority's name, as partners see it.
        contact_team: the team partners contact about an event (the front door by default).
        contact_phone: its phone number, if partners may use it.
        contact_email: its email address, if partners may use it.
        xref: LAchildID to NHS number.
    """

    la_code: str | None = None
    name: str | None = None
    contact_team: str = "Children's services front door"
    contact_phone: str | None = None
    contact_email: str | None = None
    xref: dict[str, str] = field(default_factory=dict)

    def contact(self, reference: str | None = None) -> dict[str, Any]:
        """The OrganisationContact partners use."""
        return {
            "team": self.contact_team,
            "phone": self.contact_phone,
            "email": self.contact_email,
            "reference": reference,
        }

    def source(self, la_code: str, system: str, record_id: str | None = None) -> dict[str, Any]:
        """The event's Source record for this authority."""
        return {
            "agency": "LOCAL_AUTHORITY",
            "organisation": la_code,
            "organisation_name": self.name or f"Local authority {la_code}",
            "system": system,
            "record_id": record_id,
            "contact": self.contact(),
        }


def load_xref(path: Path) -> dict[str, str]:
    """LAchildID -> NHS number from a CSV with the header ``LAchildID,NHSnumber``.

    Raises :class:`ConnectorError` naming the file and row (never a value) when a row is wrong.
    """
    out: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.DictReader(fh)
            if not rows.fieldnames or not {"LAchildID", "NHSnumber"} <= {n.strip() for n in rows.fieldnames}:
                msg = f"Cross-reference file {path} must have the header LAchildID,NHSnumber."
                raise ConnectorError(msg)
            for row in rows:
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                if not row["LAchildID"] or not row["NHSnumber"]:
                    continue
                try:
                    out[row["LAchildID"]] = validate_nhs_number(row["NHSnumber"])
                except InvalidIdentifier as exc:
                    msg = f"Cross-reference file {path}, row {rows.line_num}: {exc}"
                    raise ConnectorError(msg) from None
    except OSError:
        msg = f"Cross-reference file {path} could not be read."
        raise ConnectorError(msg) from None
    return out


def checked_la_code(value: str | None) -> str:
    """A three-digit LA code; raises ConnectorError in one sentence."""
    if not value:
        msg = "The local authority connector needs --la CODE (the DfE three-digit code) for this format."
        raise ConnectorError(msg)
    try:
        return validate_la_code(value)
    except InvalidIdentifier as exc:
        raise ConnectorError(f"--la: {exc}") from None
