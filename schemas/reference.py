"""Reference data: which police force and integrated care board serve each local authority.

The routing keys of three audiences come from the child's local authority (POLICY.md):
``MASH`` and ``FAMILY_HELP`` use the local-authority code itself, ``POLICE_PPU`` the police
force code and ``HEALTH_SAFEGUARDING`` the integrated care board (ICB) code for that
authority. The table is ``reference/local_authorities.csv``, one row per upper-tier local
authority in England (children's services authority), with columns:

``la_code``
    The DfE three-digit local-authority code (``202`` Camden).
``police_force_code``
    The territorial police force, as the Home Office's police data site (data.police.uk)
    identifies it: the force's name without "Police"/"Constabulary", lower case, words
    joined by hyphens, "&" written "and" (``metropolitan``, ``avon-and-somerset``,
    ``city-of-london``; Hampshire and Isle of Wight Constabulary keeps ``hampshire``).
``icb_code``
    The ODS code of the ICB (``QMJ`` NHS North Central London). Where an authority's area
    is split between boards, the board covering most of its children is given.

See ``reference/README.md`` for the sources and what to check when boundaries change.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from schemas.exceptions import ReferenceDataError

__all__ = [
    "REFERENCE_DIR",
    "LocalAuthority",
    "ReferenceDataError",
    "all_local_authorities",
    "icb_for",
    "local_authority",
    "police_force_for",
]

REFERENCE_DIR = Path(__file__).parent / "reference"
_LOCAL_AUTHORITIES = REFERENCE_DIR / "local_authorities.csv"
_COLUMNS = ("la_code", "la_name", "police_force_code", "police_force_name", "icb_code", "icb_name")


@dataclass(frozen=True, slots=True)
class LocalAuthority:
    """One upper-tier local authority and the organisations that serve its children."""

    code: str
    name: str
    police_force_code: str
    police_force_name: str
    icb_code: str
    icb_name: str


def local_authority(code: str) -> LocalAuthority | None:
    """Return the local authority with DfE code ``code``, or ``None`` if there is none.

    Args:
        code: three-digit DfE local-authority code, for example ``"202"``.
    """
    return _by_code(None).get(code.strip()) if isinstance(code, str) else None


def police_force_for(la_code: str) -> str | None:
    """Return the police force code serving local authority ``la_code`` (``POLICE_PPU``'s key).

    Args:
        la_code: three-digit DfE local-authority code.
    """
    found = local_authority(la_code)
    return found.police_force_code if found else None


def icb_for(la_code: str) -> str | None:
    """Return the ICB code for local authority ``la_code`` (``HEALTH_SAFEGUARDING``'s key).

    Args:
        la_code: three-digit DfE local-authority code.
    """
    found = local_authority(la_code)
    return found.icb_code if found else None


def all_local_authorities(path: Path | None = None) -> tuple[LocalAuthority, ...]:
    """Every local authority in the table, in code order.

    Args:
        path: another table in the same format; the shipped one by default.
    """
    return tuple(_by_code(path).values())


@cache
def _by_code(path: Path | None) -> dict[str, LocalAuthority]:
    source = path or _LOCAL_AUTHORITIES
    try:
        with source.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != _COLUMNS:
                msg = f"{source.name} must have the columns {', '.join(_COLUMNS)} in that order."
                raise ReferenceDataError(msg)
            rows = list(reader)
    except FileNotFoundError:
        msg = f"Reference table {source} does not exist."
        raise ReferenceDataError(msg) from None
    table: dict[str, LocalAuthority] = {}
    for line, row in enumerate(rows, start=2):
        values = [(row.get(column) or "").strip() for column in _COLUMNS]
        if not all(values):
            msg = f"{source.name} line {line} has an empty column."
            raise ReferenceDataError(msg)
        authority = LocalAuthority(*values)
        if authority.code in table:
            msg = f"{source.name} line {line} repeats local-authority code {authority.code}."
            raise ReferenceDataError(msg)
        table[authority.code] = authority
    return dict(sorted(table.items()))
