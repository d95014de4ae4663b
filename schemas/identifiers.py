"""Check and make the identifiers events carry: NHS numbers, UPNs and organisation codes.

Everything here is pure. A check either returns the identifier in its normal form or raises
:class:`InvalidIdentifier`, whose message says what is wrong and never contains the value
itself, so it can be logged or dead-lettered without putting a child's identifier on record.

The ``synthetic_*`` functions make identifiers for tests, fixtures and the demo: NHS numbers
come from the NHS test range (``999 000 0000`` to ``999 999 9999``), which is never issued to
a real person.
"""

from __future__ import annotations

import random
import re
import unicodedata

from schemas.exceptions import InvalidIdentifier

__all__ = [
    "UPN_UNKNOWN_CODES",
    "InvalidIdentifier",
    "is_valid_nhs_number",
    "is_valid_upn",
    "nhs_number_check_digit",
    "synthetic_nhs_number",
    "synthetic_upn",
    "upn_check_letter",
    "validate_gp_practice_code",
    "validate_la_child_id",
    "validate_la_code",
    "validate_linked_identifier",
    "validate_local_patient_id",
    "validate_nhs_number",
    "validate_ods_code",
    "validate_police_person_reference",
    "validate_school_urn",
    "validate_upn",
]


# ---------------------------------------------------------------------------------- NHS number

_NHS_LENGTH = 10
_NHS_TEST_PREFIX = "999"


def nhs_number_check_digit(first_nine: str) -> int | None:
    """Return the modulus 11 check digit for the first nine digits of an NHS number.

    Each digit is weighted 10 down to 2; the check digit is 11 minus the remainder of the sum
    divided by 11, with 11 becoming 0. ``None`` means the check value is 10: no valid NHS
    number starts with these nine digits.

    Args:
        first_nine: exactly nine ASCII digits.
    """
    if len(first_nine) != _NHS_LENGTH - 1 or not first_nine.isascii() or not first_nine.isdigit():
        msg = "The first part of an NHS number must be exactly nine digits."
        raise InvalidIdentifier(msg)
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def validate_nhs_number(value: str) -> str:
    """Return the NHS number as ten digits with no spaces, or raise :class:`InvalidIdentifier`.

    Spaces are allowed anywhere (``"943 476 5919"``) and removed; nothing else is.

    Args:
        value: the NHS number as written.
    """
    if not isinstance(value, str):
        msg = "NHS number must be a string."
        raise InvalidIdentifier(msg)
    digits = value.replace(" ", "")
    if not digits:
        msg = "NHS number is empty."
        raise InvalidIdentifier(msg)
    if not digits.isascii() or not digits.isdigit():
        msg = "NHS number must contain only digits and spaces."
        raise InvalidIdentifier(msg)
    if len(digits) != _NHS_LENGTH:
        msg = f"NHS number must be 10 digits, not {len(digits)}."
        raise InvalidIdentifier(msg)
    expected = nhs_number_check_digit(digits[:9])
    if expected is None:
        msg = "NHS number is not valid: its first nine digits give check value 10, which no NHS number has."
        raise InvalidIdentifier(msg)
    if int(digits[9]) != expected:
        msg = "NHS number check digit does not match."
        raise InvalidIdentifier(msg)
    return digits


def is_valid_nhs_number(value: str) -> bool:
    """Whether ``value`` is a valid NHS number (spaces allowed)."""
    try:
        validate_nhs_number(value)
    except InvalidIdentifier:
        return False
    return True


def synthetic_nhs_number(rng: random.Random) -> str:
    """Return a valid NHS number from the test range (it starts with 999), for synthetic people.

    Args:
        rng: the random source; seed it for repeatable fixtures.
    """
    while True:
        first_nine = _NHS_TEST_PREFIX + "".join(str(rng.randrange(10)) for _ in range(6))
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"


# ------------------------------------------------------------------------ unique pupil number

#: The DfE check-letter alphabet: A to Z without I, O and S. Index = remainder mod 23.
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_UPN_LENGTH = 13

#: Codes the children in need census records in the UPN's place to say *why* a child has no
#: UPN (for example UN1: under school age and not yet at school; UN7: a referral that led to no
#: further action). They are reasons, not UPNs: :func:`validate_upn` rejects them with its own
#: message so a caller can tell "no UPN, for a stated reason" from "a wrong UPN".
UPN_UNKNOWN_CODES = frozenset(f"UN{n}" for n in range(1, 11))


def _upn_value(char: str) -> int:
    return int(char) if char.isdigit() else _UPN_LETTERS.index(char)


def upn_check_letter(body: str) -> str:
    """Return the check letter for the twelve characters that follow it in a UPN.

    DfE algorithm: weight characters 2 to 13 by 2 to 13, sum, divide by 23, and map the
    remainder to ``A B C D E F G H J K L M N P Q R T U V W X Y Z``. In a temporary UPN the
    thirteenth character is a letter, counted as its position in that same alphabet.

    Args:
        body: eleven digits then a digit or one of the check-alphabet letters.
    """
    if (
        len(body) != _UPN_LENGTH - 1
        or not body[:11].isascii()
        or not body[:11].isdigit()
        or not (body[11] in _UPN_LETTERS or (body[11].isascii() and body[11].isdigit()))
    ):
        msg = "The part of a UPN after the check letter must be eleven digits then a digit or letter."
        raise InvalidIdentifier(msg)
    total = sum(_upn_value(char) * weight for char, weight in zip(body, range(2, 14), strict=True))
    return _UPN_LETTERS[total % 23]


def validate_upn(value: str) -> str:
    """Return the UPN in upper case, or raise :class:`InvalidIdentifier`.

    A UPN is 13 characters: a check letter, eleven digits, and a last character that is a digit
    (a permanent UPN) or a letter from the check alphabet (a temporary UPN). Characters 2-4
    are the issuing local authority's code. A census "UPN unknown" code (UN1 to UN10) is
    rejected with a message that says so.

    Args:
        value: the UPN as written; surrounding spaces are ignored.
    """
    if not isinstance(value, str):
        msg = "UPN must be a string."
        raise InvalidIdentifier(msg)
    upn = value.strip().upper()
    if upn in UPN_UNKNOWN_CODES:
        msg = "This is a census 'UPN unknown' reason code (UN1 to UN10), not a UPN."
        raise InvalidIdentifier(msg)
    if len(upn) != _UPN_LENGTH:
        msg = f"UPN must be 13 characters, not {len(upn)}."
        raise InvalidIdentifier(msg)
    if upn[0] not in _UPN_LETTERS:
        msg = "UPN must start with a check letter (A to Z, not I, O or S)."
        raise InvalidIdentifier(msg)
    if not upn[1:12].isascii() or not upn[1:12].isdigit():
        msg = "UPN characters 2 to 12 must be digits."
        raise InvalidIdentifier(msg)
    last = upn[12]
    if not ((last.isascii() and last.isdigit()) or last in _UPN_LETTERS):
        msg = "UPN must end with a digit, or for a temporary UPN a letter other than I, O or S."
        raise InvalidIdentifier(msg)
    if upn_check_letter(upn[1:]) != upn[0]:
        msg = "UPN check letter does not match."
        raise InvalidIdentifier(msg)
    return upn


def is_valid_upn(value: str) -> bool:
    """Whether ``value`` is a valid permanent or temporary UPN."""
    try:
        validate_upn(value)
    except InvalidIdentifier:
        return False
    return True


def synthetic_upn(rng: random.Random, la_code: str, *, temporary: bool = False) -> str:
    """Return a valid synthetic UPN issued by the local authority ``la_code``.

    Layout after the check letter: the LA code, a four-digit establishment number, a two-digit
    year of allocation, and a three-character serial whose last character is a letter for a
    temporary UPN.

    Args:
        rng: the random source; seed it for repeatable fixtures.
        la_code: three-digit DfE local-authority code.
        temporary: make a temporary UPN (last character a letter).
    """
    la = validate_la_code(la_code)
    establishment = f"{rng.randrange(1000, 8000):04d}"
    year = f"{rng.randrange(0, 100):02d}"
    serial = f"{rng.randrange(100):02d}"
    last = rng.choice(_UPN_LETTERS) if temporary else str(rng.randrange(10))
    body = la + establishment + year + serial + last
    return upn_check_letter(body) + body


# --------------------------------------------------------------------- organisation and local ids

_GP_PRACTICE = re.compile(r"[A-Z][0-9]{5}")
_SCHOOL_URN = re.compile(r"[0-9]{6}")
_LA_CODE = re.compile(r"[0-9]{3}")
_LOCAL_ID_MAX = 64


def validate_gp_practice_code(value: str) -> str:
    """Return a GP practice ODS code (a letter and five digits, e.g. ``F83004``) in upper case.

    Args:
        value: the code as written; surrounding spaces are ignored.
    """
    return _code(value, "GP practice code", _GP_PRACTICE, "a letter followed by five digits")


def validate_school_urn(value: str) -> str:
    """Return a school URN (six digits).

    Args:
        value: the URN as written; surrounding spaces are ignored.
    """
    urn = _text(value, "School URN")
    if not _SCHOOL_URN.fullmatch(urn):
        msg = "School URN must be six digits."
        raise InvalidIdentifier(msg)
    return urn


def validate_la_code(value: str) -> str:
    """Return a DfE local-authority code (three digits, e.g. ``202``); the format only.

    Whether the code belongs to an authority is :func:`schemas.reference.local_authority`'s job.

    Args:
        value: the code as written; surrounding spaces are ignored.
    """
    code = _text(value, "Local authority code")
    if not _LA_CODE.fullmatch(code):
        msg = "Local authority code must be three digits."
        raise InvalidIdentifier(msg)
    return code


def validate_police_person_reference(value: str) -> str:
    """Return a police force's person reference, checked leniently (forces' formats differ).

    It must be non-empty, at most 64 characters and free of control characters.

    Args:
        value: the reference as written; surrounding spaces are removed.
    """
    return _local_id(value, "Police person reference")


def validate_la_child_id(value: str) -> str:
    """Return a local authority's own child id, checked leniently (case systems differ).

    It must be non-empty, at most 64 characters and free of control characters.

    Args:
        value: the id as written; surrounding spaces are removed.
    """
    return _local_id(value, "Local authority child id")


_ODS_CODE = re.compile(r"[A-Z0-9]{3,6}")


def validate_ods_code(value: str) -> str:
    """Return an ODS organisation or site code (three to six letters and digits) in upper case.

    Args:
        value: the code as written; surrounding spaces are ignored.
    """
    return _code(value, "ODS code", _ODS_CODE, "three to six letters and digits")


def validate_local_patient_id(value: str) -> str:
    """Return a hospital's local patient id (MRN), checked leniently (patient systems differ).

    Args:
        value: the id as written; surrounding spaces are removed.
    """
    if isinstance(value, str) and any(char.isspace() for char in value.strip()):
        msg = "Local patient id must not contain spaces."
        raise InvalidIdentifier(msg)
    return _local_id(value, "Local patient id")


_LINKED = re.compile(r"(nhs|la|police|upn|lpi):\S+")


def validate_linked_identifier(value: str) -> str:
    """Return a child key another identifier of the same child is written as (``nhs:<number>``,
    ``la:<la>:<id>``, ``police:<ref>``, ``upn:<upn>`` or ``lpi:<ods>:<id>``), its parts checked.

    Args:
        value: the child key.
    """
    text = _text(value, "Linked identifier")
    if not _LINKED.fullmatch(text):
        msg = "Linked identifier must be a child key: nhs:, la:, police:, upn: or lpi: and the id."
        raise InvalidIdentifier(msg)
    kind, _, rest = text.partition(":")
    if kind == "nhs":
        validate_nhs_number(rest)
    elif kind == "upn":
        validate_upn(rest)
    elif kind in ("la", "lpi"):
        issuer, _, local = rest.partition(":")
        (validate_la_code if kind == "la" else validate_ods_code)(issuer)
        _local_id(local, "Linked identifier")
    return text


def _code(value: str, what: str, pattern: re.Pattern[str], form: str) -> str:
    code = _text(value, what).upper()
    if not pattern.fullmatch(code):
        msg = f"{what} must be {form}."
        raise InvalidIdentifier(msg)
    return code


def _text(value: str, what: str) -> str:
    if not isinstance(value, str):
        msg = f"{what} must be a string."
        raise InvalidIdentifier(msg)
    text = value.strip()
    if not text:
        msg = f"{what} is empty."
        raise InvalidIdentifier(msg)
    return text


def _local_id(value: str, what: str) -> str:
    text = _text(value, what)
    if len(text) > _LOCAL_ID_MAX:
        msg = f"{what} must be at most {_LOCAL_ID_MAX} characters."
        raise InvalidIdentifier(msg)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text):
        msg = f"{what} must not contain control characters or line breaks."
        raise InvalidIdentifier(msg)
    return text
