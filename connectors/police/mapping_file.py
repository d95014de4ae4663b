"""The declarative mapping file: how a force's export columns become event fields.

A mapping file is YAML. Its ``event`` section has the shape of a ``SafeguardingEvent``
(field names as in the ``.avsc`` files), with each leaf saying where its value comes from::

    event_type: DOMESTIC_ABUSE_INCIDENT
    format: csv                      # csv or json (default: from the file name)
    csv: {delimiter: ",", encoding: utf-8-sig}
    json: {records: data.incidents}  # where the array of records is, if not at the top
    timezone: Europe/London          # for exported times without a zone
    event:
      source:
        organisation: metropolitan   # a plain value is a constant
        record_id: {column: IncidentRef}
      risk: {column: Risk, values: {High: SIGNIFICANT_HARM, Medium: NEEDS_SUPPORT}}
      occurred_at: {column: IncidentDate, format: "%d/%m/%Y %H:%M"}
      details:
        offence_types: {column: Offences, split: ";"}

A ``when`` section makes the mapping apply only to some rows, so one mixed export can feed
several mappings (one run each, each with its own ``--name``)::

    when: {column: IncidentType, in: [Domestic, "Domestic abuse"]}   # or equals: Domestic

Values are compared as trimmed text, ignoring case; a row that does not match has nothing to
publish for this mapping (it is counted, never dead-lettered).

A force corrects its records by exporting them again under the same record id
(``source.record_id``): a row whose record was published before with other content is an
``AMENDED`` correction of that event, an identical one is nothing new. A ``retracted_when``
section, in the style of ``when``, names the status that means the force withdrew the record
(no crime, entered in error), published as a ``RETRACTED`` correction::

    retracted_when: {column: Outcome, in: [No crime, Cancelled, "Entered in error"]}

A leaf is a constant, or ``{column: NAME}`` with optional ``format`` (dates and times,
strptime syntax or ``iso``), ``values`` (a table from exported values to field values),
``default`` (used when the column is empty), ``split`` (for list fields) and ``required``.
A list of records (``related_people``) is a list of such sections, each included when any
of its columns has a value. The connector sets ``event_id``, ``event_type`` and
``source.agency`` itself.

:func:`load_mapping` validates the file with pydantic and against the schema, and fails with
one sentence naming the file and the field.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.exceptions import MappingFileError

AGENCY_EVENT_TYPES = {
    "POLICE": ("DOMESTIC_ABUSE_INCIDENT", "MISSING_EPISODE", "EXPLOITATION_CONCERN"),
}


class CsvOptions(BaseModel):
    """How the CSV export is written."""

    model_config = ConfigDict(extra="forbid")

    delimiter: str = ","
    encoding: str = "utf-8-sig"

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            msg = "must be exactly one character"
            raise ValueError(msg)
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            msg = "is not an encoding Python knows"
            raise ValueError(msg) from None
        return value


class JsonOptions(BaseModel):
    """How the JSON export is laid out."""

    model_config = ConfigDict(extra="forbid")

    records: str | None = Field(default=None, description="Dotted path to the array of records.")


class RowCondition(BaseModel):
    """Which rows a mapping applies to: ``column`` equal to ``equals``, or to one of ``in``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")

    @field_validator("equals", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return value if value is None or isinstance(value, str) else str(value)

    @field_validator("in_", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value

    def check(self) -> None:
        """Raise ValueError unless exactly one of ``equals`` and ``in`` is given, ``in`` non-empty."""
        if (self.equals is None) == (self.in_ is None):
            msg = "needs exactly one of 'equals' or 'in'"
            raise ValueError(msg)
        if self.in_ is not None and not self.in_:
            msg = "'in' must list at least one value"
            raise ValueError(msg)

    def wanted(self) -> frozenset[str]:
        """The values (trimmed, case-folded) a row's column must have."""
        values = [self.equals] if self.equals is not None else list(self.in_ or [])
        return frozenset(v.strip().casefold() for v in values)


class FieldSpec(BaseModel):
    """Where one event field's value comes from."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    const: Any = None
    format: str | None = None
    values: dict[str, Any] | None = None
    default: Any = None
    split: str | None = None
    required: bool | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for key, mapped in value.items():
            if isinstance(key, bool) or key is None:
                msg = (
                    f"has a key that YAML read as {key!r} rather than text; "
                    "put the exported value in quotes, "
                    "for example 'Y' or 'yes'"
                )
                raise ValueError(msg)
            out[str(key)] = mapped
        return out

    @field_validator("split")
    @classmethod
    def _non_empty(cls, value: str | None) -> str | None:
        if value == "":
            msg = "must not be empty"
            raise ValueError(msg)
        return value

    def check(self) -> None:
        """Raise ValueError unless exactly one of ``column`` and ``const`` is given."""
        has_const = "const" in self.model_fields_set
        if (self.column is None) == (not has_const):
            msg = "needs exactly one of 'column' or 'const'"
            raise ValueError(msg)


class MappingFile(BaseModel):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event_type: str
    format: Literal["csv", "json"] | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    json_options: JsonOptions = Field(default_factory=JsonOptions, alias="json")
    timezone: str = "Europe/London"
    when: RowCondition | None = None
    retracted_when: RowCondition | None = None
    event: dict[str, Any]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = "is not a time zone name such as Europe/London"
            raise ValueError(msg) from None
        return value


def _plain(message: str) -> str:
    """A pydantic message without its "Value error, " prefix."""
    return message.removeprefix("Value error, ")


def mapping_error(path: Path, field: str, problem: str) -> MappingFileError:
    """The one-sentence error for a bad mapping file."""
    problem = problem.rstrip(".")
    return MappingFileError(f"Mapping file {path} is invalid at {field}: {problem}.")


def read_mapping_file(path: Path, agency: str) -> MappingFile:
    """Read and validate the file's structure (the fields themselves are checked by the compiler).

    Raises :class:`MappingFileError` naming the file and the field.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"Mapping file {path} does not exist."
        raise MappingFileError(msg) from None
    except (OSError, UnicodeDecodeError):
        msg = f"Mapping file {path} could not be read as UTF-8 text."
        raise MappingFileError(msg) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        msg = f"Mapping file {path} is not valid YAML{where}."
        raise MappingFileError(msg) from None
    if not isinstance(document, dict):
        msg = f"Mapping file {path} must be a YAML mapping with event_type and event."
        raise MappingFileError(msg)
    try:
        spec = MappingFile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        problem = (
            "is required"
            if first["type"] == "missing"
            else (
                "is not a field a mapping file has"
                if first["type"] == "extra_forbidden"
                else _plain(first["msg"])
            )
        )
        raise mapping_error(path, field, problem) from None
    for name, condition in (("when", spec.when), ("retracted_when", spec.retracted_when)):
        if condition is not None:
            try:
                condition.check()
            except ValueError as exc:
                raise mapping_error(path, name, str(exc)) from None
    allowed = AGENCY_EVENT_TYPES.get(agency.upper(), ())
    if spec.event_type not in allowed:
        raise mapping_error(path, "event_type", f"must be one of {', '.join(allowed)} for {agency.upper()}")
    return spec


def field_spec(value: Any) -> FieldSpec:
    """A leaf's spec from its YAML: a plain value is a constant. Raises ValueError if malformed."""
    if isinstance(value, dict):
        try:
            spec = FieldSpec.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            if first["type"] == "extra_forbidden":
                msg = f"'{where}' is not one of column, const, format, values, default, split, required"
            else:
                msg = f"'{where}' {_plain(first['msg'])}"
            raise ValueError(msg) from None
    elif isinstance(value, list):
        msg = "a list is only allowed for list fields"
        raise ValueError(msg)
    else:
        spec = FieldSpec(const=value)
    spec.check()
    return spec
