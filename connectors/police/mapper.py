"""The police connector's mapping function: one exported row to one event, as its mapping file says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.exceptions import MappingError, NoEvent
from connectors.police.compiler import CompiledMapping, compile_mapping
from connectors.police.mapping_file import read_mapping_file
from connectors.runtime.corrections import RETRACTED, derived_event_id, mark_correction
from connectors.runtime.event_builder import build_event, is_child_on
from connectors.runtime.readers import CsvReader, JsonReader, Reader
from connectors.runtime.records import SourceRecord
from schemas.child_keys import child_key

AGENCY = "POLICE"


def load_mapping(path: Path) -> CompiledMapping:
    """Read, validate and compile a police mapping file; raises ``MappingFileError`` in one sentence."""
    return compile_mapping(read_mapping_file(path, AGENCY), path)


class PoliceMapper:
    """``map_record`` for one force's export.

    Args:
        mapping: the compiled mapping file.
    """

    __slots__ = ("mapping",)

    def __init__(self, mapping: CompiledMapping) -> None:
        self.mapping = mapping

    def __call__(self, record: SourceRecord) -> dict[str, Any]:
        """The event for one row; raises ``MappingError`` naming the column and field at fault,
        and ``NoEvent`` for a row the mapping's ``when`` condition leaves to another mapping."""
        if not self.mapping.applies(record.data):
            msg = "The row is not one this mapping's when: condition selects."
            raise NoEvent(msg)
        fields = self.mapping.build(record.data)
        occurred = fields["occurred_at"]
        child = fields["child"]
        if is_child_on(child.get("date_of_birth"), occurred) is False:
            msg = (
                "child.date_of_birth makes the person 18 or over when the event happened; "
                "only children's events are published."
            )
            raise MappingError(msg)
        event = build_event(
            record,
            event_type=self.mapping.event_type,
            occurred_at=occurred,
            recorded_at=fields.get("recorded_at"),
            source={**fields["source"], "agency": AGENCY},
            risk=fields["risk"],
            child=child,
            details=fields["details"],
            related_people=fields.get("related_people"),
            narrative=fields.get("narrative"),
        )
        identity = self.record_key(event)
        if identity is not None:  # a resend from any file has the same id; a correction names it
            event["event_id"] = derived_event_id(record.connector, identity)
            if self.mapping.retracted(record.data):
                mark_correction(
                    event,
                    RETRACTED,
                    event["event_id"],
                    derived_event_id(record.connector, f"{identity}|retracted"),
                )
        return event

    @staticmethod
    def record_key(event: dict[str, Any]) -> str | None:
        """What names the force's record of this child: the force, its record id and the child
        (one incident names several children, a row each); None when the mapping has no record id."""
        source, child = event["source"], event["child"]
        if not source.get("record_id"):
            return None
        who = child.get("police_person_reference") or child_key(child)
        return f"police|{source['organisation']}|{source['record_id']}|{who}"


def reader_for(mapping: CompiledMapping, fmt: str | None) -> Reader:
    """The reader for the export: ``fmt`` from the command line, else the mapping file's, else CSV."""
    chosen = fmt or mapping.format or "csv"
    if chosen == "csv":
        return CsvReader(mapping.csv_delimiter, mapping.csv_encoding, mapping.columns)
    if chosen == "json":
        return JsonReader(mapping.json_records)
    msg = f"The police connector reads csv or json exports, not {chosen}."
    raise MappingError(msg)
