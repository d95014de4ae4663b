"""Identifier checks: NHS numbers, UPNs and organisation codes. Errors never echo the value."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.exceptions import InvalidIdentifier
from schemas.identifiers import (
    UPN_UNKNOWN_CODES,
    is_valid_nhs_number,
    is_valid_upn,
    nhs_number_check_digit,
    synthetic_nhs_number,
    synthetic_upn,
    upn_check_letter,
    validate_gp_practice_code,
    validate_la_child_id,
    validate_la_code,
    validate_nhs_number,
    validate_police_person_reference,
    validate_school_urn,
    validate_upn,
)

# Check digits worked by hand (weights 10..2, 11 - sum mod 11):
# 943476591 -> 299 -> 299 mod 11 = 2 -> 9 (the NHS's own documentation example);
# 999000001 -> 245 -> 3 -> 8; 999123457 -> 322 -> 3 -> 8; 999000002 -> 247 -> 5 -> 6.
GOOD_NHS = ["9434765919", "9990000018", "9991234578", "9990000026"]


def _rejects(value: str, message: str) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_nhs_number(value)
    assert str(caught.value) == message
    return caught.value


@pytest.mark.parametrize("number", GOOD_NHS)
def test_known_good_nhs_numbers_are_accepted(number: str) -> None:
    assert validate_nhs_number(number) == number
    assert is_valid_nhs_number(number)


def test_nhs_number_spaces_are_normalised() -> None:
    assert validate_nhs_number("943 476 5919") == "9434765919"
    assert validate_nhs_number(" 999 000 0018 ") == "9990000018"


def test_wrong_check_digit_is_rejected_without_echoing_the_number() -> None:
    error = _rejects("9434765918", "NHS number check digit does not match.")
    assert "9434765918" not in str(error)
    assert "943" not in str(error)


def test_check_value_ten_is_never_valid() -> None:
    # 999000000 sums to 243, 243 mod 11 = 1, so the check value would be 10.
    assert nhs_number_check_digit("999000000") is None
    for last in "0123456789":
        error = _rejects(
            "999000000" + last,
            "NHS number is not valid: its first nine digits give check value 10, which no NHS number has.",
        )
        assert "999000000" not in str(error)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("943476591", "NHS number must be 10 digits, not 9."),
        ("94347659190", "NHS number must be 10 digits, not 11."),
        ("943-476-5919", "NHS number must contain only digits and spaces."),
        ("94347659l9", "NHS number must contain only digits and spaces."),
        ("٩٤٣٤٧٦٥٩١٩", "NHS number must contain only digits and spaces."),
        ("   ", "NHS number is empty."),
    ],
)
def test_malformed_nhs_numbers_say_what_is_wrong(value: str, message: str) -> None:
    error = _rejects(value, message)
    if value.strip():
        assert value.strip() not in str(error)


def test_non_string_nhs_number_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="must be a string"):
        validate_nhs_number(9434765919)  # type: ignore[arg-type]


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_check_digit_round_trip(first_nine: str) -> None:
    check = nhs_number_check_digit(first_nine)
    if check is None:
        assert not any(is_valid_nhs_number(first_nine + d) for d in "0123456789")
        return
    assert is_valid_nhs_number(f"{first_nine}{check}")
    for other in set("0123456789") - {str(check)}:
        assert not is_valid_nhs_number(first_nine + other)


@given(st.text(min_size=6, max_size=20))
def test_nhs_errors_never_contain_the_input(value: str) -> None:
    try:
        validate_nhs_number(value)
    except InvalidIdentifier as error:
        assert value.strip() not in str(error)


def test_synthetic_nhs_numbers_are_valid_and_in_the_test_range() -> None:
    rng = random.Random(20240601)
    numbers = [synthetic_nhs_number(rng) for _ in range(2000)]
    assert all(n.startswith("999") and len(n) == 10 for n in numbers)
    assert all(is_valid_nhs_number(n) for n in numbers)
    assert len(set(numbers)) > 1900


def test_synthetic_nhs_numbers_are_repeatable_with_a_seed() -> None:
    first = [synthetic_nhs_number(random.Random(7)) for _ in range(3)]
    assert first == [first[0]] * 3


# ------------------------------------------------------------------------------------------ UPN
# Worked by hand: body 202123425001, weights 2..13 -> 163, 163 mod 23 = 2 -> C.
# Temporary 20212342500A: A counts 0 -> 150, mod 23 = 12 -> N; ...500Z: Z counts 22 -> 436 -> 22 -> Z.


@pytest.mark.parametrize("upn", ["C202123425001", "N20212342500A", "Z20212342500Z"])
def test_known_upns_are_accepted(upn: str) -> None:
    assert validate_upn(upn) == upn
    assert validate_upn(upn.lower()) == upn
    assert is_valid_upn(upn)


def test_upn_check_letter() -> None:
    assert upn_check_letter("202123425001") == "C"
    assert upn_check_letter("20212342500A") == "N"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("D202123425001", "UPN check letter does not match."),
        ("C20212342500", "UPN must be 13 characters, not 12."),
        ("I202123425001", "UPN must start with a check letter (A to Z, not I, O or S)."),
        ("C2021234250X1", "UPN characters 2 to 12 must be digits."),
        ("C20212342500O", "UPN must end with a digit, or for a temporary UPN a letter other than I, O or S."),
    ],
)
def test_bad_upns_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_upn(value)
    assert str(caught.value) == message
    assert value not in str(caught.value)


@pytest.mark.parametrize("code", sorted(UPN_UNKNOWN_CODES))
def test_census_unknown_codes_are_not_upns(code: str) -> None:
    with pytest.raises(InvalidIdentifier, match="'UPN unknown' reason code"):
        validate_upn(code)
    assert len(UPN_UNKNOWN_CODES) == 10


def test_synthetic_upns_are_valid_and_carry_the_la_code() -> None:
    rng = random.Random(3)
    for _ in range(500):
        upn = synthetic_upn(rng, "202")
        assert is_valid_upn(upn) and upn[1:4] == "202" and upn[-1].isdigit()
        temporary = synthetic_upn(rng, "943", temporary=True)
        assert is_valid_upn(temporary) and temporary[1:4] == "943" and temporary[-1].isalpha()


def test_synthetic_upn_needs_a_valid_la_code() -> None:
    with pytest.raises(InvalidIdentifier, match="three digits"):
        synthetic_upn(random.Random(1), "20")


# -------------------------------------------------------------------------- organisation codes


def test_organisation_code_formats() -> None:
    assert validate_gp_practice_code(" f83004 ") == "F83004"
    assert validate_school_urn("100000") == "100000"
    assert validate_la_code("202") == "202"
    for bad in ("F8300", "883004", "FF3004", "F830045"):
        with pytest.raises(InvalidIdentifier, match="letter followed by five digits"):
            validate_gp_practice_code(bad)
    for bad in ("10000", "1000000", "10000A"):
        with pytest.raises(InvalidIdentifier, match="six digits"):
            validate_school_urn(bad)
    for bad in ("20", "2022", "2O2"):
        with pytest.raises(InvalidIdentifier, match="three digits"):
            validate_la_code(bad)


@pytest.mark.parametrize("check", [validate_police_person_reference, validate_la_child_id])
def test_local_ids_are_checked_leniently(check: Callable[[str], str]) -> None:
    assert check(" 01/123456/24 ") == "01/123456/24"
    assert check("CHILD-0042") == "CHILD-0042"
    for bad, message in (
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * 65, "at most 64 characters"),
        ("ABC\x00123", "control characters"),
        ("ABC\n123", "control characters"),
        ("ABC\u2028123", "control characters"),
    ):
        with pytest.raises(InvalidIdentifier, match=message) as caught:
            check(bad)
        assert bad.strip() == "" or bad not in str(caught.value)
