"""Converting one exported value to the type its event field needs.

Each converter is built once from the mapping file and then called for every row. It takes
the raw value (text from CSV, any JSON value) and returns the field's value, or raises
:class:`MappingError` with a message naming the column and the field, never the value.
Empty text counts as absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, tzinfo
from typing import Any

from connectors.exceptions import MappingError

Convert = Callable[[Any], Any]

TRUE_WORDS = frozenset({"y", "yes", "true", "t", "1"})
FALSE_WORDS = frozenset({"n", "no", "false", "f", "0"})

_FAST = {
    "%Y": r"(?P<Y>\d{4})",
    "%m": r"(?P<m>\d{1,2})",
    "%d": r"(?P<d>\d{1,2})",
    "%H": r"(?P<H>\d{1,2})",
    "%M": r"(?P<M>\d{1,2})",
    "%S": r"(?P<S>\d{1,2})",
    "%y": r"(?P<y>\d{2})",
}


def text(value: Any) -> str | None:
    """The value as stripped text; None when absent or empty."""
    if value.__class__ is str:
        value = value.strip()
        return value or None
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fast_pattern(fmt: str) -> re.Pattern[str] | None:
    """A regex for a strptime format made only of numeric directives and literals, else None.

    A directive directly followed by another is read at its full width (``%Y%m%d``)."""
    out: list[str] = []
    used: set[str] = set()
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            token = fmt[i : i + 2]
            if token not in _FAST or token in used:
                return None
            used.add(token)
            pattern = _FAST[token]
            if fmt[i + 2 : i + 3] == "%":
                pattern = pattern.replace("{1,2}", "{2}")
            out.append(pattern)
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("".join(out))


def _parse_with(fmt: str) -> Callable[[str], datetime]:
    """A parser for ``fmt`` (strptime syntax, or ``iso``); raises ValueError on a mismatch."""
    if fmt == "iso":
        return lambda s: datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
    pattern = _fast_pattern(fmt)
    if pattern is None:
        return lambda s: datetime.strptime(s, fmt)

    def parse(s: str) -> datetime:
        match = pattern.fullmatch(s)
        if match is None:
            raise ValueError(fmt)
        g = match.groupdict()
        if "Y" in g:
            year = int(g["Y"])
        else:  # as strptime reads %y: 69-99 are 1969-1999, 00-68 are 2000-2068
            short = int(g.get("y") or 0)
            year = short + (1900 if short >= 69 else 2000)
        return datetime(
            year,
            int(g.get("m") or 1),
            int(g.get("d") or 1),
            int(g.get("H") or 0),
            int(g.get("M") or 0),
            int(g.get("S") or 0),
        )

    return parse


def date_converter(where: str, fmt: str) -> Convert:
    """Text in ``fmt`` (default ``iso``, ``YYYY-MM-DD``) to a date."""
    parse = _parse_with(fmt)

    def convert(value: Any) -> date | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        s = text(value)
        if s is None:
            return None
        try:
            return parse(s).date() if fmt != "iso" else date.fromisoformat(s)
        except ValueError:
            msg = f"{where} is not a date in the format {fmt}."
            raise MappingError(msg) from None

    return convert


def timestamp_converter(where: str, fmt: str, zone: tzinfo) -> Convert:
    """Text in ``fmt`` (default ``iso``) to a zoned time; a time without a zone is in ``zone``."""
    parse = _parse_with(fmt)

    def convert(value: Any) -> datetime | None:
        s = text(value)
        if s is None:
            return None
        try:
            parsed = parse(s)
        except ValueError:
            msg = f"{where} is not a date and time in the format {fmt}."
            raise MappingError(msg) from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)

    return convert


def boolean_converter(where: str, table: Mapping[str, Any] | None) -> Convert:
    """Yes/no text (or the mapping's ``values`` table) to a boolean."""

    def convert(value: Any) -> bool | None:
        if isinstance(value, bool) and table is None:
            return value
        s = text(value)
        if s is None:
            return None
        if table is not None:
            if s in table:
                return bool(table[s])
            msg = f"{where} has a value the mapping's values table does not list."
            raise MappingError(msg)
        low = s.lower()
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
        msg = f"{where} is not a yes/no value (Y, N, yes, no, true, false, 1, 0)."
        raise MappingError(msg)

    return convert


def enum_converter(where: str, symbols: tuple[str, ...], table: Mapping[str, Any] | None) -> Convert:
    """Text to one of ``symbols``, through the mapping's ``values`` table if it has one, else by name."""
    known = frozenset(symbols)

    def convert(value: Any) -> str | None:
        s = text(value)
        if s is None:
            return None
        if table is not None:
            if s in table:
                return str(table[s])
            msg = f"{where} has a value the mapping's values table does not list."
            raise MappingError(msg)
        symbol = s.upper().replace(" ", "_").replace("-", "_")
        if symbol in known:
            return symbol
        msg = f"{where} is not one of {', '.join(symbols)}; add a values table to the mapping file."
        raise MappingError(msg)

    return convert


def int_converter(where: str) -> Convert:
    """Whole-number text to an int."""

    def convert(value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        s = text(value)
        if s is None:
            return None
        try:
            return int(s)
        except ValueError:
            msg = f"{where} is not a whole number."
            raise MappingError(msg) from None

    return convert


def string_converter(where: str, table: Mapping[str, Any] | None) -> Convert:
    """Text as it is, or through the mapping's ``values`` table (unlisted values pass unchanged)."""

    def convert(value: Any) -> str | None:
        s = text(value)
        if s is None or table is None:
            return s
        found = table.get(s, s)
        return None if found is None else str(found)

    return convert
