"""Provenance on a real broker (SGB_PROVENANCE=on): signed events are shared; unsigned or forged
ones are dead letters with the reason and nothing is shared; hubs refuse deliveries the
filter did not sign; keys rotate and retire while the filter runs."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningFilter, read_topic, sgb_env
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from factories import domestic_abuse_incident, event

from broker.clients import producer
from broker.hub.sinks import open_sink
from broker.hub.subscriber import Subscriber
from broker.security.provenance import KEY_ID_HEADER, SIGNATURE_HEADER, Signer
from broker.security.signing_keys import KeyStore
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.police import synthetic as police_syn
from connectors.runtime.publisher import EventPublisher
from schemas.child_keys import child_key
from schemas.topics import delivery_topic, ingress_topic

pytestmark = pytest.mark.kafka

MASH = ("MASH", "202")
DA_MAPPING = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "police-domestic-abuse.yaml"


@pytest.fixture
def signed(kafka: Settings) -> Settings:
    return kafka.model_copy(update={"provenance": True})


def keys(settings: Settings) -> KeyStore:
    return KeyStore(settings.state_dir / "keys")


def produce_raw(
    settings: Settings, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]] | None
) -> None:
    prod = producer(settings)
    prod.produce(settings.topic(topic), key=key, value=value, headers=headers or [])
    prod.flush(10)


def dead_letters(settings: Settings, expect: int) -> dict[str, dict[str, Any]]:
    codecs = Codecs(registry_for(settings))
    letters = [codecs.dead_letter.decode(m.value()) for m in read_topic(settings, "sg.dlq.v1", expect=expect)]
    return {d["event_id"]: d for d in letters}


def audited_ids(settings: Settings, expect: int, timeout: float = 30.0) -> set[str]:
    codecs = Codecs(registry_for(settings))
    return {
        codecs.audit.decode(m.value())["event_id"]  # one audit record per event
        for m in read_topic(settings, "sg.audit.decisions.v1", expect=expect, timeout=timeout)
    }


def test_a_signed_event_is_shared_and_its_delivery_is_signed_by_the_filter(
    signed: Settings, group_id: str, tmp_path: Path
) -> None:
    incident = domestic_abuse_incident()
    with RunningFilter(signed, group_id=group_id, instance="test") as running:
        publisher = EventPublisher(signed, "POLICE")
        publisher.publish(incident)
        publisher.flush()
        [delivery] = read_topic(signed, delivery_topic(*MASH), expect=1)
    assert running.service.counts["dead_lettered"] == 0
    headers = dict(delivery.headers())
    assert headers[KEY_ID_HEADER].decode() == keys(signed).active_key_id("filter")
    assert len(base64.b64decode(headers[SIGNATURE_HEADER], validate=True)) == 64  # base64 text
    subscriber = Subscriber(signed, *MASH, group_id=f"{group_id}-hub")
    written = subscriber.run(
        open_sink(f"jsonl:{tmp_path / 'mash.jsonl'}", *MASH), threading.Event(), idle_timeout=3
    )
    assert written == 1 and not subscriber.refused
    assert json.loads((tmp_path / "mash.jsonl").read_text())["event_id"] == incident["event_id"]


def test_unsigned_and_forged_events_are_dead_letters_and_nothing_is_shared(
    signed: Settings, group_id: str, tmp_path: Path
) -> None:
    codecs = Codecs(registry_for(signed))
    store = keys(signed)
    police, police_in = Signer(store, "police"), ingress_topic("POLICE")
    stranger = Signer(KeyStore(tmp_path / "elsewhere"), "police")  # a key this deployment never trusted

    def police_event() -> tuple[dict[str, Any], bytes, bytes]:
        ev = domestic_abuse_incident()
        return ev, codecs.event.encode(ev), (child_key(ev["child"]) or "").encode()

    cases: dict[str, str] = {}
    sent: dict[str, bytes] = {}
    with RunningFilter(signed, group_id=group_id, instance="test") as running:
        ev, value, key = police_event()
        produce_raw(signed, police_in, value, key, None)
        cases[ev["event_id"]], sent[ev["event_id"]] = "unsigned", value

        ev, value, key = police_event()
        headers = police.headers(police_in, key, value)
        tampered = codecs.event.encode({**ev, "narrative": "Altered in transit."})  # one field changed
        produce_raw(signed, police_in, tampered, key, headers)
        cases[ev["event_id"]], sent[ev["event_id"]] = "bad_signature", tampered

        ev, value, key = police_event()
        headers = police.headers(police_in, key, value)
        signature = bytearray(dict(headers)[SIGNATURE_HEADER])
        signature[10] ^= 0x01
        produce_raw(
            signed,
            police_in,
            value,
            key,
            [(KEY_ID_HEADER, dict(headers)[KEY_ID_HEADER]), (SIGNATURE_HEADER, bytes(signature))],
        )
        cases[ev["event_id"]], sent[ev["event_id"]] = "bad_signature", value

        ev, value, key = police_event()
        produce_raw(signed, police_in, value, key, stranger.headers(police_in, key, value))
        cases[ev["event_id"]], sent[ev["event_id"]] = "unknown_key", value

        # A health event signed, correctly, with the police key: police may not write health ingress.
        ev = event("EMERGENCY_ATTENDANCE")
        value, key = codecs.event.encode(ev), (child_key(ev["child"]) or "").encode()
        health_in = ingress_topic("HEALTH")
        produce_raw(signed, health_in, value, key, police.headers(health_in, key, value))
        cases[ev["event_id"]], sent[ev["event_id"]] = "signer_not_allowed", value

        letters = dead_letters(signed, expect=len(cases))
        counts = running.service.counts
    assert {event_id: letters[event_id]["reason"].split(":")[0] for event_id in letters} == cases
    for event_id, letter in letters.items():
        assert letter["payload"] == sent[event_id]  # kept for an operator, byte for byte
        assert letter["component"] == "filter"
        assert letter["origin_topic"].startswith(signed.topic("sg.ingress."))
    # Nothing decided, shared or audited (dead letters commit in the same transaction as any audit would).
    assert counts["shared"] == 0 and counts["withheld"] == 0
    assert audited_ids(signed, expect=1, timeout=2) == set()
    assert read_topic(signed, delivery_topic(*MASH), expect=1, timeout=2) == []


def test_the_hub_refuses_deliveries_the_filter_did_not_sign(
    signed: Settings, group_id: str, tmp_path: Path
) -> None:
    codecs = Codecs(registry_for(signed))
    store = keys(signed)
    topic = delivery_topic(*MASH)
    filter_signer, police = Signer(store, "filter"), Signer(store, "police")

    def delivery(signer: Signer | None, alter: bool = False) -> str:
        ev = domestic_abuse_incident()
        value, key = codecs.event.encode(ev), b"pseudonym"
        headers = [("sgb.event_id", ev["event_id"].encode()), ("sgb.policy_version", b"test")]
        if signer is not None:
            headers += signer.headers(topic, key, value)
        if alter:
            value = codecs.event.encode({**ev, "narrative": "Altered in transit."})
        produce_raw(signed, topic, value, key, headers)
        return str(ev["event_id"])

    good = delivery(filter_signer)
    delivery(filter_signer, alter=True)
    delivery(police)
    delivery(None)
    last = delivery(filter_signer)
    sink = tmp_path / "mash.jsonl"
    subscriber = Subscriber(signed, *MASH, group_id=f"{group_id}-hub")
    written = subscriber.run(open_sink(f"jsonl:{sink}", *MASH), threading.Event(), idle_timeout=3)
    assert written == 2
    assert [json.loads(line)["event_id"] for line in sink.read_text().splitlines()] == [good, last]
    assert subscriber.refused == {"bad_signature": 1, "signer_not_allowed": 1, "unsigned": 1}
    # The embedding API yields only verified events too.
    api = Subscriber(signed, *MASH, group_id=f"{group_id}-api")
    assert [e.event_id for e in api.events(idle_timeout=3)] == [good, last]
    assert sum(api.refused.values()) == 3


def test_keys_rotate_and_retire_while_the_filter_runs(signed: Settings, group_id: str) -> None:
    store = keys(signed)
    codecs = Codecs(registry_for(signed))
    publisher = EventPublisher(signed, "POLICE")
    before, after, late = domestic_abuse_incident(), domestic_abuse_incident(), domestic_abuse_incident()
    with RunningFilter(signed, group_id=group_id, instance="test") as running:
        publisher.publish(before)  # the publisher's first event makes the agency's signing key
        publisher.flush()
        old_id = store.active_key_id("police")
        assert old_id is not None
        old_file = store.signer_dir("police") / f"{old_id}.key"
        old_key = Ed25519PrivateKey.from_private_bytes(old_file.read_bytes())
        new = store.rotate("police")  # the running publisher and filter pick it up: no restart
        publisher.publish(after)
        publisher.flush()
        deadline = time.monotonic() + 60
        seen: set[str] = set()
        while {before["event_id"], after["event_id"]} - seen and time.monotonic() < deadline:
            seen |= audited_ids(signed, expect=100, timeout=1)
        assert {before["event_id"], after["event_id"]} <= seen
        store.retire(old_id)
        # Something still signing with the retired key is refused.
        value, key = codecs.event.encode(late), (child_key(late["child"]) or "").encode()
        from broker.security.provenance import signed_bytes

        signature = old_key.sign(signed_bytes(ingress_topic("POLICE"), key, value))
        produce_raw(
            signed,
            ingress_topic("POLICE"),
            value,
            key,
            [(KEY_ID_HEADER, old_id.encode()), (SIGNATURE_HEADER, signature)],
        )
        letters = dead_letters(signed, expect=1)
        counts = running.service.counts
    assert letters[late["event_id"]]["reason"].startswith("retired_key:")
    assert counts["dead_lettered"] == 1
    signers = [
        dict(m.headers())[KEY_ID_HEADER].decode()
        for m in read_topic(signed, ingress_topic("POLICE"), expect=3)
    ]
    assert sorted(signers) == sorted([old_id, new.key_id, old_id])


def test_a_file_connector_signs_with_its_agency_key_and_the_filter_accepts(
    signed: Settings, group_id: str, tmp_path: Path
) -> None:
    rows = 20
    export = police_syn.write_csv(
        tmp_path / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(rows, random.Random(3)),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgb.cli",
            "connector",
            "run",
            "police",
            "--source",
            str(export),
            "--mapping",
            str(DA_MAPPING),
        ],
        env={**sgb_env(signed), "SGB_PROVENANCE": "on"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ingress = read_topic(signed, ingress_topic("POLICE"), expect=rows)
    signers = {dict(m.headers())[KEY_ID_HEADER].decode() for m in ingress}
    assert signers == {keys(signed).active_key_id("police")}
    with RunningFilter(signed, group_id=group_id, instance="test") as running:
        audited = audited_ids(signed, expect=rows, timeout=60)
        counts = running.service.counts
    assert len(audited) == rows and counts["dead_lettered"] == 0


def test_an_event_from_a_key_not_yet_trusted_is_replayed_once_the_key_is_trusted(
    signed: Settings, group_id: str, tmp_path: Path
) -> None:
    # A connector on another machine rotated before its new public key reached this one.
    remote = KeyStore(tmp_path / "connector-machine")
    connector = Signer(remote, "police")
    codecs = Codecs(registry_for(signed))
    incident = domestic_abuse_incident()
    value, key = codecs.event.encode(incident), (child_key(incident["child"]) or "").encode()
    police_in = ingress_topic("POLICE")
    with RunningFilter(signed, group_id=group_id, instance="test") as running:
        produce_raw(signed, police_in, value, key, connector.headers(police_in, key, value))
        letters = dead_letters(signed, expect=1)
        assert letters[incident["event_id"]]["reason"].startswith("unknown_key:")
        keys(signed).trust(remote.export("police").to_json(), "police.json")
        env = {**sgb_env(signed), "SGB_PROVENANCE": "on"}
        command = [sys.executable, "-m", "sgb.cli", "dlq", "replay", "--reason", "unknown_key"]
        replay = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert replay.returncode == 0, replay.stderr
        assert incident["event_id"] in audited_ids(signed, expect=1, timeout=60)
        counts = running.service.counts
    assert counts["dead_lettered"] == 1 and counts["shared"] >= 1


def test_unsigned_events_are_not_replayed_as_they_are_but_can_be_signed_again(
    signed: Settings, group_id: str
) -> None:
    # Issue 20, item 5: before, `dlq replay --reason unsigned` re-sent the same unsigned bytes,
    # which were dead-lettered again (the dead letters doubled on each replay), and nothing told
    # the operator what to do.
    codecs = Codecs(registry_for(signed))
    incidents = [domestic_abuse_incident() for _ in range(3)]
    police_in = ingress_topic("POLICE")
    env = {**sgb_env(signed), "SGB_PROVENANCE": "on"}

    def replay(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sgb.cli", "dlq", "replay", "--reason", "unsigned", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    with RunningFilter(signed, group_id=group_id, instance="test"):
        for incident in incidents:  # a connector that does not sign
            value, key = codecs.event.encode(incident), (child_key(incident["child"]) or "").encode()
            produce_raw(signed, police_in, value, key, None)
        assert len(dead_letters(signed, expect=3)) == 3
        plain = replay()
        assert plain.returncode == 0, plain.stderr
        assert "3 dead letter(s) are events a connector published unsigned" in plain.stdout
        assert "0 dead letter(s) replayed" in plain.stdout
        keys(signed).active("police")  # the police connector's key, here and trusted
        again = replay("--sign-as", "police")
        assert again.returncode == 0, again.stderr
        assert "3 dead letter(s) replayed" in again.stdout
        ids = audited_ids(signed, expect=3, timeout=60)
        assert {i["event_id"] for i in incidents} <= ids
        assert len(read_topic(signed, "sg.dlq.v1", expect=4, timeout=5)) == 3, "no new dead letters"
        assert "0 dead letter(s) replayed" in replay("--sign-as", "police").stdout, "each at most once"
