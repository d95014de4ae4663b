"""Issue 18's last "done means", on a real broker with ``SGB_FIELD_ENCRYPTION=on``: after
``sgb erase --child nhs:...`` no readable copy of that child's identifiers or personal fields is
left on any partition of any topic (keys, values and headers read raw) or in any hub sink
(jsonl, SQLite, PostgreSQL), while another child is still readable and still routed."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from conftest import RunningFilter, sgb_env
from factories import domestic_abuse_incident, event
from test_corrections_e2e import sink_text
from test_filter_kafka import audits_for, publish
from test_hub_sinks import postgres_dsn, postgres_server  # noqa: F401 (fixtures)

from broker.clients import admin_client
from broker.hub.sinks import open_sink
from broker.hub.subscriber import Subscriber
from broker.security.ciphers import Revealer
from broker.security.field_encryption import ERASED, UNREADABLE
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.identifiers import synthetic_nhs_number

SINKS = ("jsonl", "sqlite", "postgres")


def _child(event: dict[str, Any], nhs: str, name: tuple[str, str], born: date, place: str) -> dict[str, Any]:
    """``event`` about one synthetic child with distinctive names and addresses (to search bytes for)."""
    event["child"].update(
        nhs_number=nhs,
        police_person_reference=None,
        given_name=name[0],
        family_name=name[1],
        date_of_birth=born,
        address={"line1": f"7 {place} Mews", "line2": None, "town": "Testford", "postcode": "ZQ1 7XY"},
        confidential_address={
            "line1": f"{place} Refuge House",
            "line2": None,
            "town": "Testford",
            "postcode": "ZQ2 8XY",
        },
    )
    if place == "Brightwater":
        event["child"]["address"]["postcode"] = "ZB1 1BB"
        event["child"]["confidential_address"]["postcode"] = "ZB2 2BB"
    return event


def _raw_messages(settings: Settings) -> list[Any]:
    """Every message on every partition of every topic of this test, read raw (aborted ones too)."""
    metadata = admin_client(settings).list_topics(timeout=10)
    parts = [
        TopicPartition(name, p, 0)
        for name, topic in metadata.topics.items()
        if name.startswith(settings.topic_prefix)
        for p in topic.partitions
    ]
    cons = Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": "raw-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
            "auto.offset.reset": "earliest",
        }
    )
    out: list[Any] = []
    try:
        ends = {}
        for tp in parts:
            low, high = cons.get_watermark_offsets(tp, timeout=10)
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        cons.assign([TopicPartition(t, p, 0) for t, p in ends])
        while ends:
            batch = cons.consume(500, timeout=1.0)
            assert batch or ends, "raw read stalled"
            for msg in batch:
                if msg.error():
                    continue
                out.append(msg)
                if msg.offset() + 1 >= ends.get((msg.topic(), msg.partition()), 0):
                    ends.pop((msg.topic(), msg.partition()), None)
            for tp in cons.position([TopicPartition(t, p) for t, p in ends]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    ends.pop((tp.topic, tp.partition))
    finally:
        cons.close()
    return out


def _bytes_of(msg: Any) -> bytes:
    headers = b"".join(k.encode() + (v or b"") for k, v in msg.headers() or [])
    return (msg.key() or b"") + b"\x00" + (msg.value() or b"") + b"\x00" + headers


def _events(settings: Settings, messages: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every event on the ingress and delivery topics with its topic, decoded and opened as a hub would."""
    codecs, reveal = Codecs(registry_for(settings)), Revealer(settings)
    bearing = (settings.topic("sg.ingress."), settings.topic("sg.deliver."))
    return [
        (m.topic(), reveal(codecs.event.decode(m.value())))
        for m in messages
        if m.topic().startswith(bearing) and m.value()
    ]


def _hubs(settings: Settings, shared: set[tuple[str, str]], sinks: dict[tuple[str, str], str]) -> None:
    stop = threading.Event()
    for audience, org in sorted(shared):
        Subscriber(settings, audience, org).run(
            open_sink(sinks[(audience, org)], audience, org), stop, idle_timeout=3
        )


def test_sgb_erase_leaves_no_readable_copy_of_the_child_on_any_topic_or_in_any_sink(
    kafka: Settings,
    group_id: str,
    tmp_path: Path,
    postgres_dsn: str,  # noqa: F811 (the fixture)
) -> None:
    settings = kafka.model_copy(update={"field_encryption": "on"})
    rng = random.Random(1818)
    nhs_a, nhs_b = synthetic_nhs_number(rng), synthetic_nhs_number(rng)
    assert nhs_a.startswith("999") and nhs_b.startswith("999") and nhs_a != nhs_b
    born_a, born_b = date(2023, 3, 1), date(2022, 9, 9)  # under 5: health visiting receives too
    name_a = ("Zephyrine", "Quillfeather")
    a_police = _child(domestic_abuse_incident(born=born_a), nhs_a, name_a, born_a, "Quillfeather")
    concern = event(
        "SCHOOL_SAFEGUARDING_CONCERN", risk="SIGNIFICANT_HARM"
    )  # to the MASH from a second agency
    a_school = _child(concern, nhs_a, name_a, born_a, "Quillfeather")
    b_police = _child(
        domestic_abuse_incident(born=born_b), nhs_b, ("Barnaby", "Brightwater"), born_b, "Brightwater"
    )
    secrets_a = [nhs_a, "Zephyrine", "Quillfeather", "ZQ1 7XY", "ZQ2 8XY"]

    with RunningFilter(settings, group_id=group_id, instance="test"):
        publish(settings, a_police, a_school, b_police)
        audits = audits_for(settings, 3)
        shared = {(d["audience"], d["organisation"]) for d in audits if d["outcome"] == "SHARE"}
        assert len({e for e in (d["event_id"] for d in audits if d["outcome"] == "SHARE")}) == 3
        sinks = {
            hub: f"{kind}:{tmp_path / f'{hub[0]}-{hub[1]}.{kind}'}"
            if kind != "postgres"
            else f"postgres:{postgres_dsn}"
            for hub, kind in zip(sorted(shared), SINKS * 3, strict=False)
        }
        assert {s.partition(":")[0] for s in sinks.values()} == set(SINKS)
        _hubs(settings, shared, sinks)
        assert any("Quillfeather" in sink_text(s) for s in sinks.values())  # the check below would catch it

        env = {**sgb_env(settings), "SGB_FIELD_ENCRYPTION": "on"}
        erased = subprocess.run(
            [sys.executable, "-m", "sgb.cli", "erase", "--child", f"nhs:{nhs_a}", "--yes"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert erased.returncode == 0, erased.stderr
        assert nhs_a not in erased.stdout + erased.stderr
        b_later = _child(
            domestic_abuse_incident(born=born_b), nhs_b, ("Barnaby", "Brightwater"), born_b, "Brightwater"
        )
        publish(settings, b_later)
        told = audits_for(settings, 3 + 2 + 1)  # the ERASED notices of a's two events, b's later event
        assert {d["event_id"] for d in told if d["outcome"] == "SHARE"} >= {b_later["event_id"]}
        assert {d["corrects_event_id"] for d in told if d["correction"] == "ERASED"} == {
            a_police["event_id"],
            a_school["event_id"],
        }
        _hubs(settings, shared, sinks)

    # 1. Raw: the erased child's identifiers, names and postcodes are nowhere in Kafka.
    messages = _raw_messages(settings)
    assert len(messages) > 10
    found = {(m.topic(), s) for m in messages for s in secrets_a if s.encode() in _bytes_of(m)}
    assert not found, f"readable copies of the erased child: {sorted(found)}"

    # 2. Decoded and opened as a hub would: a's personal fields read as erased, b's are all there.
    events = _events(settings, messages)
    of_a = [e for _, e in events if e["event_id"] in (a_police["event_id"], a_school["event_id"])]
    of_b = [(t, e) for t, e in events if e["event_id"] in (b_police["event_id"], b_later["event_id"])]
    assert of_a and len(of_b) > 2
    for e in of_a:  # a recipient's copy may lack a field its rule withheld (null): never readable
        child = e["child"]
        assert child["date_of_birth"] is None
        for field in ("nhs_number", "given_name", "family_name"):
            assert child[field] in (ERASED, None), field
        for address in (child["address"], child["confidential_address"]):
            assert address is None or {address["line1"], address["postcode"]} == {ERASED}
    assert any(e["child"]["nhs_number"] == ERASED and e["child"]["given_name"] == ERASED for e in of_a)
    for topic, e in of_b:
        child = e["child"]
        assert ERASED not in repr(e) and UNREADABLE not in repr(e)
        if topic.startswith(settings.topic("sg.ingress.")):  # as sent; recipients get what their rule grants
            assert (child["nhs_number"], child["given_name"], child["date_of_birth"]) == (
                nhs_b,
                "Barnaby",
                born_b,
            )
            assert child["confidential_address"]["line1"] == "Brightwater Refuge House"

    # 3. The hubs' sinks hold nothing readable of a; b, including its later event, is still there.
    everything = "".join(sink_text(s) for s in set(sinks.values()))
    assert not [s for s in secrets_a if s in everything]
    assert "Brightwater" in everything and b_later["event_id"] in everything
