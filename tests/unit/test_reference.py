"""The local-authority table: complete, consistent, and the lookups that route audiences."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import pytest

from schemas.exceptions import ReferenceDataError
from schemas.identifiers import validate_la_code
from schemas.reference import (
    REFERENCE_DIR,
    LocalAuthority,
    all_local_authorities,
    icb_for,
    local_authority,
    police_force_for,
)

TABLE = REFERENCE_DIR / "local_authorities.csv"


def _rows() -> list[dict[str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_row_is_complete() -> None:
    rows = _rows()
    assert len(rows) == 153  # upper-tier authorities in England since April 2023
    for row in rows:
        assert all(value and value.strip() == value for value in row.values()), row["la_code"]


def test_codes_are_unique_and_well_formed() -> None:
    rows = _rows()
    codes = [row["la_code"] for row in rows]
    assert len(set(codes)) == len(codes)
    assert len({row["la_name"] for row in rows}) == len(rows)
    for row in rows:
        assert validate_la_code(row["la_code"]) == row["la_code"]
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", row["police_force_code"]), row["police_force_code"]
        assert re.fullmatch(r"Q[A-Z0-9]{2}", row["icb_code"]), row["icb_code"]


def test_each_code_has_one_name() -> None:
    names: dict[str, set[str]] = defaultdict(set)
    for row in _rows():
        names[row["police_force_code"]].add(row["police_force_name"])
        names[row["icb_code"]].add(row["icb_name"])
    assert all(len(found) == 1 for found in names.values())


def test_every_force_and_care_board_in_england_appears() -> None:
    rows = _rows()
    assert len({row["police_force_code"] for row in rows}) == 39
    assert len({row["icb_code"] for row in rows}) == 42


@pytest.mark.parametrize(
    ("code", "name", "force", "icb"),
    [
        ("202", "Camden", "metropolitan", "QMJ"),
        ("201", "City of London", "city-of-london", "QMF"),
        ("383", "Leeds", "west-yorkshire", "QWO"),
        ("839", "Bournemouth, Christchurch and Poole", "dorset", "QVV"),
        ("921", "Isle of Wight", "hampshire", "QRL"),
        ("942", "Cumberland", "cumbria", "QHM"),
        ("943", "Westmorland and Furness", "cumbria", "QE1"),
    ],
)
def test_lookups(code: str, name: str, force: str, icb: str) -> None:
    found = local_authority(code)
    assert isinstance(found, LocalAuthority)
    assert (found.code, found.name) == (code, name)
    assert police_force_for(code) == force
    assert icb_for(code) == icb


def test_unknown_codes_give_none() -> None:
    for code in ("999", "909", "928", "", "abc"):  # 909 Cumbria and 928 Northamptonshire were abolished
        assert local_authority(code) is None
        assert police_force_for(code) is None
        assert icb_for(code) is None


def test_all_local_authorities_is_in_code_order() -> None:
    codes = [authority.code for authority in all_local_authorities()]
    assert codes == sorted(codes) and len(codes) == 153


def test_a_broken_table_is_refused(tmp_path: Path) -> None:
    header = "la_code,la_name,police_force_code,police_force_name,icb_code,icb_name\n"
    good = "202,Camden,metropolitan,Metropolitan Police Service,QMJ,NHS North Central London ICB\n"
    duplicate = tmp_path / "duplicate.csv"
    duplicate.write_text(header + good + good, encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="line 3 repeats local-authority code 202"):
        all_local_authorities(duplicate)
    empty = tmp_path / "empty.csv"
    empty.write_text(header + "202,Camden,,Metropolitan Police Service,QMJ,NHS NCL\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="line 2 has an empty column"):
        all_local_authorities(empty)
    columns = tmp_path / "columns.csv"
    columns.write_text("la_code,la_name\n202,Camden\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="must have the columns"):
        all_local_authorities(columns)
    with pytest.raises(ReferenceDataError, match="does not exist"):
        all_local_authorities(tmp_path / "missing.csv")
