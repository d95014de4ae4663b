"""A hospital's mixed HL7 v2 feed over MLLP, on the real broker: every message is published,
dead-lettered with a reason or counted as not used, and nothing is answered AA unless Kafka
has its event. The feed reuses control ids, packs several messages in one block, carries
every trigger of the ADT lifecycle, training messages, a latin-1 message, an undecodable
one and one over the size limit; an A40 is answered AA once its merge is published."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest
from hl7.mllp import open_hl7_connection

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.health import Hl7Mapper, Hl7Message, load_profile
from connectors.health import synthetic as syn
from connectors.health.hl7_lifecycle import Step, adt_step, visit_event_id
from connectors.health.mllp import MllpListener
from schemas.identifiers import synthetic_nhs_number
from tests.integration.test_connector_mllp import ack_code, read_all

PROFILE = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "health-example.yaml"

pytestmark = pytest.mark.kafka


def build_feed(rng: random.Random) -> tuple[list[bytes], Counter[str], int]:
    """(blocks, expected counts by outcome, messages in all)."""
    blocks: list[bytes] = []
    expected: Counter[str] = Counter()

    def add(*messages: str | bytes, outcome: str) -> None:
        parts = [m.encode() if isinstance(m, str) else m for m in messages]
        blocks.append(b"\r".join(parts))
        expected[outcome] += len(parts)

    index = 0
    for _ in range(40):  # attendances start and end
        add(syn.adt_message(index, rng), outcome="published")
        add(syn.adt_message(index + 1, rng, trigger="A03"), outcome="published")
        index += 2
    for i in range(10):  # the engine restarted: control ids 1..10 again, different messages
        add(syn.adt_message(index, rng, control_id=str(i + 1)), outcome="published")
        add(syn.adt_message(index + 1, rng, control_id=str(i + 1)), outcome="published")
        index += 2
    for _ in range(4):  # several messages in one block
        add(*(syn.adt_message(index + k, rng) for k in range(3)), outcome="published")
        index += 3
    for trigger in ("A08", "A02", "A11", "A12", "A13"):  # corrections of what was sent
        add(syn.adt_message(index, rng, trigger=trigger), outcome="published")
        index += 1
    add(syn.adt_message(index, rng, trigger="A40"), outcome="published")  # a merge: identity evidence
    index += 1
    add(syn.adt_message(index, rng, trigger="A05"), outcome="not_used")
    add(syn.adt_message(index + 1, rng, message_type="ORU", trigger="R01"), outcome="not_used")
    add(syn.adt_message(index + 2, rng, processing_id="T"), outcome="training")
    add(syn.adt_message(index + 3, rng, processing_id="D"), outcome="training")
    add(syn.adt_message(index + 4, rng, born="19800101"), outcome="no_event")  # an adult
    index += 5
    latin = syn.adt_message(index, rng, charset="8859/1", family_name="Zoëson").encode("latin-1")
    add(latin, outcome="published")
    undecodable = syn.adt_message(index + 1, rng, family_name="Zoëson").encode("latin-1")  # says UTF-8
    add(undecodable, outcome="dead_lettered")
    huge = syn.adt_message(index + 2, rng).replace("Fracture of bone", "x" * (3 << 19))
    add(huge, outcome="dead_lettered")
    add(syn.adt_message(index + 3, rng), syn.adt_message(index + 4, rng, born=""), outcome="mixed")
    return blocks, expected, sum(expected.values())


async def exchange(port: int, blocks: list[bytes]) -> list[bytes]:
    """Send each block on one connection, waiting for its ACK, resending on AE."""
    reader, writer = await open_hl7_connection("127.0.0.1", port, limit=1 << 23)
    acks = []
    try:
        for block in blocks:
            for _ in range(60):
                writer.writeblock(block)
                await writer.drain()
                ack = await asyncio.wait_for(reader.readblock(), 30)
                if ack_code(ack) != "AE":
                    break
                await asyncio.sleep(0.5)
            acks.append(ack)
    finally:
        writer.close()
    return acks


def test_mixed_feed_every_message_accounted_for(kafka: Settings) -> None:
    codecs = Codecs(registry_for(kafka))
    _ = codecs.event, codecs.dead_letter
    listener = MllpListener(
        kafka, Hl7Mapper(load_profile(PROFILE)), "health-hl7", "127.0.0.1", 0, codecs=codecs
    )
    blocks, expected, total = build_feed(random.Random(14))
    resend = blocks[0]  # the sender lost our AA and sends the first message again
    assert total >= 100

    async def scenario() -> list[bytes]:
        stop = asyncio.Event()
        task = asyncio.create_task(listener.serve(stop))
        await listener.listening.wait()
        try:
            return await exchange(listener.port, [*blocks, resend])
        finally:
            stop.set()
            await task

    acks = asyncio.run(scenario())
    codes = [ack_code(a) for a in acks]
    # The oversized, the undecodable and the mixed block are AR; everything else AA; the
    # connection carried on after the oversized message.
    assert codes == ["AA"] * (len(blocks) - 3) + ["AR", "AR", "AR", "AA"]
    assert b"larger than the 1024 KiB" in acks[-3] and b"character set" in acks[-4]

    c = listener.counts
    assert c["received"] == total + 1
    assert c["held_for_corrections"] == 0
    assert c["not_used"] == 2 and c["training"] == 2 and c["no_event"] == 2 + 2 + 1
    assert c["dead_lettered"] == 3 and c["published"] == expected["published"] + 1 + 1
    assert c["published"] + c["dead_lettered"] + c["no_event"] == c["received"]

    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.health.v1")]
    ids = [e["event_id"] for e in events]
    assert len(events) == c["published"]
    # Reused control ids are new events; only the resend repeats an id (and it is the first's).
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    # (an attendance's event id is its visit's, so that a later A08 or A11 can name it)
    first = adt_step(Hl7Message(resend.decode()), "A04")
    assert first is not None
    first_id = visit_event_id("health-hl7", first, Step.START)
    assert repeated == [first_id] and ids.count(first_id) == 2
    [merge] = [e for e in events if e.get("merges")]  # the A40, answered AA once published
    assert merge["merges"][0]["merged_identifiers"] and merge["child"]["family_name"] is None
    names = {e["child"]["family_name"] for e in events}
    assert "Zoëson" in names and not any("\ufffd" in (n or "") for n in names)
    letters = [codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1")]
    assert len(letters) == 3
    reasons = sorted(d["reason"] for d in letters)
    assert any("larger than" in r for r in reasons) and any("character set" in r for r in reasons)
    assert any("PID-7" in r for r in reasons)


def test_an_a40_is_answered_aa_once_published_and_an_invalid_one_ar_with_a_dead_letter(
    kafka: Settings,
) -> None:
    codecs = Codecs(registry_for(kafka))
    _ = codecs.event, codecs.dead_letter
    listener = MllpListener(
        kafka, Hl7Mapper(load_profile(PROFILE)), "health-hl7", "127.0.0.1", 0, codecs=codecs
    )
    rng = random.Random(40)
    good = syn.adt_message(1, rng, trigger="A40")
    nhs = synthetic_nhs_number(rng)
    wrong = nhs[:-1] + str((int(nhs[-1]) + 1) % 10)  # a check digit that fails
    bad = syn.adt_message(2, rng, trigger="A40").replace("MRG|", f"MRG|{wrong}^^^NHS^NH~", 1)

    async def scenario() -> list[bytes]:
        stop = asyncio.Event()
        task = asyncio.create_task(listener.serve(stop))
        await listener.listening.wait()
        try:
            return await exchange(listener.port, [good.encode(), bad.encode()])
        finally:
            stop.set()
            await task

    assert [ack_code(a) for a in asyncio.run(scenario())] == ["AA", "AR"]
    [merge] = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.health.v1")]
    assert merge["merges"] and merge["child"]["given_name"] is None
    [letter] = [codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1")]
    assert "MRG-1 of group 1" in letter["reason"] and wrong not in letter["reason"]
