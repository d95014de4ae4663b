"""HL7 v2 as hospital feeds send it, without Kafka: message identity, several messages a
block or file, the whole ADT lifecycle, training messages, character sets, file layouts."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from broker.settings import Settings
from connectors.exceptions import MappingError, NoEvent
from connectors.health import Hl7FileReader, Hl7Mapper, Hl7Message, load_profile
from connectors.health import synthetic as syn
from connectors.health.exceptions import NotUsed, Training
from connectors.health.mllp import MllpListener
from connectors.registry import LocalAuthorityOptions, parts_for
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from schemas.child_keys import child_key
from schemas.identifiers import synthetic_nhs_number
from schemas.validation import validate_event

PROFILE = load_profile(
    Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"
)


def read_file(path: Path) -> list[SourceRecord]:
    return list(Hl7FileReader().records(FileRef(path, "health-test", path.name, "f" * 32)))


def outcome(record: SourceRecord) -> Any:
    if isinstance(record.data, Malformed):
        return "Malformed", record.data.reason
    try:
        return Hl7Mapper(PROFILE)(record)
    except (NoEvent, MappingError) as exc:
        return type(exc).__name__, str(exc)


def test_reused_control_id_is_a_new_event_and_a_resend_is_the_same(tmp_path: Path) -> None:
    first = syn.adt_message(1, random.Random(1), control_id="1")
    other = syn.adt_message(2, random.Random(2), control_id="1", trigger="A03")  # counter reset
    path = tmp_path / "feed.hl7"
    path.write_text("\n".join([first, other, first]).replace("\r", "\n"))
    again = tmp_path / "resent.hl7"
    again.write_text(first)
    records = read_file(path) + read_file(again)
    ids = [r.event_id for r in records]
    assert ids[0] != ids[1], "a different message with a reused MSH-10 must get its own event id"
    assert ids[0] == ids[2] == ids[3], "a resend of the same message must keep its event id"
    events = [Hl7Mapper(PROFILE)(r) for r in records]
    # An attendance's event id is its visit's (so a later A08/A11 can name it): as stable, as distinct.
    got = [e["event_id"] for e in events]
    assert got[0] != got[1] and got[0] == got[2] == got[3]


def test_every_message_of_a_framed_capture_is_read(tmp_path: Path) -> None:
    rng = random.Random(3)
    messages = [syn.adt_message(i, rng) for i in range(3)]
    path = tmp_path / "capture.dat"
    path.write_bytes(b"".join(b"\x0b" + m.encode() + b"\x1c\r" for m in messages))
    records = read_file(path)
    assert [r.position for r in records] == ["message 1", "message 2", "message 3"]
    assert [outcome(r)["source"]["record_id"] for r in records] == [
        "MSG00000000",
        "MSG00000001",
        "MSG00000002",
    ]


def test_one_message_text_with_two_msh_is_refused_not_half_read() -> None:
    rng = random.Random(4)
    with pytest.raises(ValueError, match="more than one message"):
        Hl7Message(syn.adt_message(1, rng) + "\r" + syn.adt_message(2, rng))


def _a40(*groups: tuple[str, str], born: str = "20150601") -> SourceRecord:
    """An A40 with one PID/MRG pair per group (PID-3, MRG-1 as written)."""
    lines = [
        "MSH|^~\\&|ED-SYSTEM|RJ122|SGB|SGB|20261120213900||ADT^A40^ADT_A39|MRG-MSG-1|P|2.4",
        "EVN|A40|20261120213900",
    ]
    for pid, mrg in groups:
        lines += [f"PID|1||{pid}||Synthetica^Testy||{born}|F", f"MRG|{mrg}"]
    text = "\r".join(lines)
    return SourceRecord("t", "mllp://x", "mllp:x", 0, "message 1", Hl7Message(text), text.encode())


NHS_A, NHS_B, NHS_C = (synthetic_nhs_number(random.Random(seed)) for seed in (71, 72, 73))


def test_a_merge_is_published_as_identity_evidence_with_both_identifiers() -> None:
    event = Hl7Mapper(PROFILE)(_a40((f"{NHS_A}^^^NHS^NH", "H1^^^RXX^MR")))
    assert event["merges"] == [{"identifiers": [f"nhs:{NHS_A}"], "merged_identifiers": ["lpi:RXX:H1"]}]
    assert child_key(event["child"]) == f"nhs:{NHS_A}"
    # Identifiers only: nothing about the patient or a visit travels with a merge.
    child = event["child"]
    assert all(child[f] is None for f in ("given_name", "family_name", "date_of_birth", "address"))
    assert event["narrative"] is None and event["details"].get("attendance_reason") is None
    assert "correction" not in event
    validate_event(event)
    assert Hl7Mapper(PROFILE)(_a40((f"{NHS_A}^^^NHS^NH", "H1^^^RXX^MR")))["event_id"] == event["event_id"]


def test_every_pid_mrg_group_and_every_mrg_repetition_is_read() -> None:
    event = Hl7Mapper(PROFILE)(
        _a40(
            (f"{NHS_A}^^^NHS^NH~H7^^^RXX^MR", f"H1^^^RXX^MR~H2^^^RXX^MR~{NHS_B}^^^NHS^NH"),
            ("H9^^^RXX^MR", "H8^^^RXX^MR~H7^^^RXX^MR"),
        )
    )
    assert event["merges"] == [
        {
            "identifiers": [f"nhs:{NHS_A}", "lpi:RXX:H7"],
            "merged_identifiers": [f"nhs:{NHS_B}", "lpi:RXX:H1", "lpi:RXX:H2"],  # the NHS number first
        },
        {"identifiers": ["lpi:RXX:H9"], "merged_identifiers": ["lpi:RXX:H8", "lpi:RXX:H7"]},
    ]
    assert event["child"]["local_patient_id"] == "H7" and event["child"]["local_patient_id_issuer"] == "RXX"


def test_a_merge_with_an_invalid_identifier_is_a_mapping_error_that_names_no_value() -> None:
    bad = NHS_C[:-1] + str((int(NHS_C[-1]) + 1) % 10)
    for groups in (
        ((f"{NHS_A}^^^NHS^NH", f"{bad}^^^NHS^NH"),),
        ((f"{bad}^^^NHS^NH", "H1^^^RXX^MR"),),
        ((f"{NHS_A}^^^NHS^NH", "H1^^^RXX^MR"), ("H9^^^RXX^MR", "")),
    ):
        with pytest.raises(MappingError) as caught:
            Hl7Mapper(PROFILE)(_a40(*groups))
        assert (
            bad not in str(caught.value) and "H1" not in str(caught.value) and "H9" not in str(caught.value)
        )
        assert "group" in str(caught.value)


def _mapped(trigger: str, index: int = 9, **kwargs: str) -> dict[str, Any]:
    text = syn.adt_message(index, random.Random(5), trigger=trigger, **kwargs)
    record = SourceRecord("t", "mllp://x", "mllp:x", 0, "message 1", Hl7Message(text), text.encode())
    return Hl7Mapper(PROFILE)(record)


@pytest.mark.parametrize(
    ("trigger", "kind", "corrects"),
    [
        ("A08", "AMENDED", "A04"),
        ("A02", "AMENDED", "A04"),
        ("A12", "AMENDED", "A04"),
        ("A11", "RETRACTED", "A01"),
        ("A13", "RETRACTED", "A03"),
    ],
)
def test_lifecycle_triggers_are_corrections_of_the_visits_event(
    trigger: str, kind: str, corrects: str
) -> None:
    original = _mapped(corrects)
    correction = _mapped(trigger)
    assert correction["correction"] == {"kind": kind, "corrects_event_id": original["event_id"]}
    assert correction["event_id"] != original["event_id"]
    assert correction["event_id"] == _mapped(trigger)["event_id"]  # a resend is the same correction
    assert (
        _mapped(trigger, index=10)["correction"]["corrects_event_id"] != original["event_id"]
    )  # other visit
    assert (
        "correction" not in original and correction["child"]["nhs_number"] == original["child"]["nhs_number"]
    )


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"trigger": "A05"}, NotUsed),
        ({"trigger": "A31"}, NotUsed),
        ({"message_type": "ORU", "trigger": "R01"}, NotUsed),
        ({"processing_id": "T"}, Training),
        ({"processing_id": "D"}, Training),
        ({"processing_id": "t", "trigger": "A03"}, Training),
    ],
)
def test_unused_and_training_messages_are_counted_not_published_or_refused(
    kwargs: dict[str, str], kind: type[NoEvent]
) -> None:
    text = syn.adt_message(1, random.Random(6), **kwargs)
    record = SourceRecord("t", "mllp://x", "mllp:x", 0, "message 1", Hl7Message(text), text.encode())
    with pytest.raises(kind):
        Hl7Mapper(PROFILE)(record)


def test_latin1_message_is_read_by_its_declared_charset_and_a_bad_one_alone_is_refused(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    latin = syn.adt_message(1, rng, charset="8859/1", family_name="Zoëson").encode("latin-1")
    wrong = syn.adt_message(2, rng, charset="UNICODE UTF-8", family_name="Zoëson").encode("latin-1")
    plain = syn.adt_message(3, rng).encode()
    path = tmp_path / "mixed.hl7"
    path.write_bytes(b"\r".join([latin, wrong, plain]))
    first, second, third = read_file(path)
    assert outcome(first)["child"]["family_name"] == "Zoëson"
    assert outcome(second) == (
        "Malformed",
        "The message is not text in the character set MSH-18 (UNICODE UTF-8); "
        "declare its character set in MSH-18.",
    )
    assert outcome(third)["event_type"] == "EMERGENCY_ATTENDANCE"


def test_file_layouts_bom_txt_and_lower_case_patient_class(tmp_path: Path) -> None:
    rng = random.Random(8)
    text = syn.adt_message(1, rng).replace("PV1|1|E|", "PV1|1|e|")
    path = tmp_path / "feed.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert {".hl7", ".txt", ".dat"} <= set(Hl7FileReader.suffixes)
    (record,) = read_file(path)
    assert outcome(record)["event_type"] == "EMERGENCY_ATTENDANCE"


def test_site_code_must_be_an_ods_code() -> None:
    rng = random.Random(9)
    base = syn.adt_message(1, rng)
    named = base.replace("^^^RJ122^^^^^", "^^^St Thomas^^^^^")
    record = SourceRecord("t", "f", "f", 0, "message 1", Hl7Message(named), named.encode())
    assert outcome(record)["details"]["site_ods_code"] == "RJ122"  # MSH-4 is one
    neither = named.replace("|ED-SYSTEM|RJ122|", "|ED-SYSTEM|ST THOMAS|")
    record = SourceRecord("t", "f", "f", 0, "message 1", Hl7Message(neither), neither.encode())
    assert outcome(record) == (
        "MappingError",
        "Neither PV1-3.4 nor MSH-4 is an ODS code, so the site is unknown.",
    )


def test_nhs_number_with_spaces_or_dashes_is_normalised() -> None:
    nhs = syn.synthetic_nhs_number(random.Random(10))
    for written in (f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}", f"{nhs[:3]}-{nhs[3:6]}-{nhs[6:]}"):
        text = syn.adt_message(1, random.Random(11), nhs_number=written)
        record = SourceRecord("t", "f", "f", 0, "message 1", Hl7Message(text), text.encode())
        assert outcome(record)["child"]["nhs_number"] == nhs


def test_a_silent_or_half_open_connection_is_closed() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:9")  # never contacted: nothing is sent
    listener = MllpListener(
        settings, Hl7Mapper(PROFILE), "health-hl7", "127.0.0.1", 0, ack_timeout=0.5, idle_timeout=0.5
    )

    async def scenario() -> list[bytes]:
        stop = asyncio.Event()
        task = asyncio.create_task(listener.serve(stop))
        await listener.listening.wait()
        seen = []
        try:
            for opening in (b"", b"\x0bMSH|^~\\&|half"):
                reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
                writer.write(opening)
                await writer.drain()
                seen.append(await asyncio.wait_for(reader.read(), 10))
                writer.close()
        finally:
            stop.set()
            await task
        return seen

    assert asyncio.run(scenario()) == [b"", b""]
    assert listener.counts["timed_out"] == 2


def test_a_folder_of_txt_hl7_files_is_read_as_hl7(tmp_path: Path) -> None:
    (tmp_path / "adt-0001.txt").write_bytes(b"\xef\xbb\xbf" + syn.adt_message(1, random.Random(12)).encode())
    (tmp_path / "readme.txt").write_text("not a feed")
    parts = parts_for("health", tmp_path, None, None, LocalAuthorityOptions())
    assert parts.format == "hl7" and isinstance(parts.reader, Hl7FileReader)
