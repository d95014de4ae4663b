"""``sgb schemas check`` fails with one clear sentence on each kind of catalogue mistake."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.exceptions import SchemaError
from schemas.governance import RELEASED_DIR, check_catalogue
from schemas.loader import SCHEMA_DIR


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    target = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, target)
    return target


def edit(directory: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_the_shipped_catalogue_passes() -> None:
    assert "stay compatible both ways" in check_catalogue()


def test_untagged_field(catalogue: Path) -> None:
    edit(catalogue, "MissingEpisode", lambda s: field(s, "circumstances").pop("confluent:tags"))
    with pytest.raises(SchemaError, match=r"field details\.circumstances has no sensitivity tags"):
        check_catalogue(catalogue, RELEASED_DIR)


def test_unknown_tag(catalogue: Path) -> None:
    edit(catalogue, "Child", lambda s: field(s, "ethnicity").__setitem__("confluent:tags", ["SPECIAL"]))
    with pytest.raises(SchemaError, match=r"field child\.ethnicity has unknown tag SPECIAL"):
        check_catalogue(catalogue, RELEASED_DIR)


def test_missing_doc(catalogue: Path) -> None:
    edit(catalogue, "Source", lambda s: field(s, "system").pop("doc"))
    with pytest.raises(SchemaError, match=r"field source\.system has no doc"):
        check_catalogue(catalogue, RELEASED_DIR)


def test_sensitive_field_that_cannot_be_withheld(catalogue: Path) -> None:
    def required(s: dict[str, Any]) -> None:
        f = field(s, "category_of_abuse")
        f["type"] = f["type"][1]
        f.pop("default")

    edit(catalogue, "ChildProtectionPlan", required)
    with pytest.raises(SchemaError, match=r"category_of_abuse carries CASE_DETAIL but cannot be withheld"):
        check_catalogue(catalogue, RELEASED_DIR)


def test_removing_a_required_field_is_incompatible(catalogue: Path) -> None:
    edit(catalogue, "SafeguardingEvent", lambda s: s["fields"].remove(field(s, "recorded_at")))
    with pytest.raises(SchemaError, match=r"SafeguardingEvent is not forward compatible .* recorded_at"):
        check_catalogue(catalogue, RELEASED_DIR)


def test_adding_a_required_field_is_incompatible(catalogue: Path) -> None:
    edit(
        catalogue,
        "Source",
        lambda s: s["fields"].append(
            {"name": "region", "type": "string", "doc": "Region.", "confluent:tags": ["METADATA"]}
        ),
    )
    with pytest.raises(
        SchemaError, match=r"not backward compatible .* source\.region was added without a default"
    ):
        check_catalogue(catalogue, RELEASED_DIR)


def test_changing_a_type_is_incompatible(catalogue: Path) -> None:
    edit(catalogue, "SafeguardingEvent", lambda s: field(s, "occurred_at").__setitem__("type", "string"))
    with pytest.raises(SchemaError, match=r"occurred_at: type changed"):
        check_catalogue(catalogue, RELEASED_DIR)


def test_adding_an_optional_field_is_compatible(catalogue: Path) -> None:
    edit(
        catalogue,
        "Source",
        lambda s: s["fields"].append(
            {
                "name": "region",
                "type": ["null", "string"],
                "default": None,
                "doc": "Region.",
                "confluent:tags": ["METADATA"],
            }
        ),
    )
    assert "stay compatible both ways" in check_catalogue(catalogue, RELEASED_DIR)
