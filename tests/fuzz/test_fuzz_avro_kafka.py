"""End to end on the real broker: Avro that cannot be decoded, on an ingress topic, becomes a
dead letter with its reason and origin, and reaches no one.

(Unknown schema ids and bytes that are not Avro at all are covered by
``tests/integration/test_skeleton_flow.py``; this adds truncated Avro under the event's own
schema id and a bad magic byte in front of an otherwise valid event.)
"""

from __future__ import annotations

import pytest
from conftest import RunningFilter, read_topic
from factories import domestic_abuse_incident

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for

from .fuzzkit import count


@pytest.mark.kafka
def test_truncated_avro_and_a_bad_magic_byte_are_dead_letters_and_reach_no_one(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    count("avro on kafka: end to end")
    codecs = Codecs(registry_for(kafka))
    bad_event = domestic_abuse_incident(risk="SIGNIFICANT_HARM")
    good_event = domestic_abuse_incident(risk="SIGNIFICANT_HARM")
    whole = codecs.event.encode(bad_event)
    bad = [whole[: len(whole) // 2], b"\x01" + whole[1:]]
    key = b"nhs:9990000000"
    prod = producer(kafka)
    topic = kafka.topic("sg.ingress.police.v1")
    for value in bad:
        prod.produce(topic, key=key, value=value)
    prod.produce(topic, key=key, value=codecs.event.encode(good_event))  # after them, same partition
    prod.flush(10)

    letters = read_topic(kafka, "sg.dlq.v1", expect=2)
    assert len(letters) == 2
    headers = [dict(m.headers()) for m in letters]
    assert [h["sgb.origin.offset"] for h in headers] == [b"0", b"1"]
    assert all(h["sgb.origin.topic"] == topic.encode() and h["sgb.component"] == b"filter" for h in headers)
    reasons = [h["sgb.reason"].decode() for h in headers]
    assert "not valid Avro" in reasons[0] and "magic byte" in reasons[1]
    assert [codecs.dead_letter.decode(m.value())["payload"] for m in letters] == bad

    # The valid event that followed them is delivered; nothing else is.
    assert read_topic(kafka, "sg.deliver.mash.202.v1", expect=1)  # the valid one has been processed
    mash = read_topic(kafka, "sg.deliver.mash.202.v1", expect=2, timeout=2)
    assert [codecs.event.decode(m.value())["event_id"] for m in mash] == [good_event["event_id"]]
    assert bad_event["event_id"] != good_event["event_id"]
