"""The education connector: schools' safeguarding concerns by webhook (SCHOOL_SAFEGUARDING_CONCERN)
and the DfE Common Transfer File from the MIS (ATTENDANCE_ALERT, CHILD_MISSING_EDUCATION)."""

from __future__ import annotations

from connectors.education.ctf import CtfMapper, CtfReader
from connectors.exceptions import ConnectorError
from connectors.runtime.records import ConnectorParts

FORMATS = ("ctf",)

__all__ = ["FORMATS", "CtfMapper", "CtfReader", "parts"]


def parts(fmt: str | None) -> ConnectorParts:
    """The reader, the (snapshot-free) mapping function and the format for a school file source."""
    if fmt not in (None, "ctf"):
        msg = (
            f"The education connector reads Common Transfer Files (ctf), not {fmt}; concerns come by webhook."
        )
        raise ConnectorError(msg)
    return ConnectorParts(CtfReader(), CtfMapper(), "ctf")
