"""Per-child field encryption and erasure on a real broker: connector -> filter -> hub, then ``sgb erase``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from conftest import RunningFilter, read_topic, sgb_env
from factories import domestic_abuse_incident

from broker.hub.subscriber import Subscriber
from broker.security.ciphers import Revealer
from broker.security.field_encryption import ERASED, PREFIX
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.publisher import EventPublisher
from schemas.child_keys import child_key

INGRESS, MASH, SCHOOL = "sg.ingress.police.v1", "sg.deliver.mash.202.v1", "sg.deliver.school_dsl.100000.v1"


def _event(marker: str) -> tuple[dict[str, Any], str, list[bytes]]:
    """An incident whose narrative and refuge address carry ``marker``; its child key; the secret texts."""
    event = domestic_abuse_incident()
    event["narrative"] = f"Synthetic narrative {marker}"
    event["child"]["confidential_address"]["line1"] = f"Refuge {marker}"
    event["child"]["confidential_address"]["postcode"] = "ZZ9 9ZZ"
    event["details"]["protective_measures"] = f"Measures {marker}"
    secrets = [
        f"narrative {marker}".encode(),
        f"Refuge {marker}".encode(),
        f"Measures {marker}".encode(),
        b"ZZ9 9ZZ",
    ]
    return event, child_key(event["child"]) or "", secrets


def _publish(settings: Settings, *events: dict[str, Any]) -> None:
    publisher = EventPublisher(settings, "POLICE")
    for event in events:
        publisher.publish(event)
    publisher.flush()


def _by_id(settings: Settings, topic: str, expect: int) -> dict[str, dict[str, Any]]:
    """Every event on ``topic`` re-read from the beginning, tokens opened as a hub would."""
    codecs, reveal = Codecs(registry_for(settings)), Revealer(settings)
    messages = read_topic(settings, topic, expect=expect)
    assert len(messages) == expect
    return {e["event_id"]: e for e in (reveal(codecs.event.decode(m.value())) for m in messages)}


def _erase(settings: Settings, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # The key alone: the ERASED corrections to hubs are tests/integration/test_corrections_e2e.py's.
        [sys.executable, "-m", "sgb.cli", "erase", "--child", key, "--yes", "--keys-only"],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sealed_in_kafka_open_at_the_hub_and_erased_everywhere_by_sgb_erase(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    settings = kafka.model_copy(update={"field_encryption": "on"})
    a, key_a, secrets_a = _event("ALPHA-7Q")
    b, key_b, secrets_b = _event("BRAVO-3K")
    _publish(settings, a, b)
    with RunningFilter(settings, group_id=group_id, instance="test"):
        assert len(read_topic(settings, MASH, expect=2)) == 2
        assert len(read_topic(settings, SCHOOL, expect=2)) == 2

    # 1. At rest in Kafka: no secret text on the ingress or any delivery topic, only tokens.
    raw = [m.value() for t in (INGRESS, MASH, SCHOOL) for m in read_topic(settings, t, expect=2)]
    assert len(raw) == 6
    assert not [s for s in secrets_a + secrets_b for value in raw if s in value]
    codecs = Codecs(registry_for(settings))
    assert all(s in codecs.event.encode(a) for s in secrets_a)  # the check above would catch clear text
    mash_raw = [codecs.event.decode(m.value()) for m in read_topic(settings, MASH, expect=2)]
    assert all(e["narrative"].startswith(PREFIX) for e in mash_raw)
    assert all(e["child"]["confidential_address"]["line1"].startswith(PREFIX) for e in mash_raw)
    assert all(e["child"]["address"]["line1"].startswith(PREFIX) for e in mash_raw)  # every personal field
    assert all(e["child"]["date_of_birth"] is None and e["sealed_values"] for e in mash_raw)
    assert all(e["child"]["local_authority_code"] == "202" for e in mash_raw)  # routing: METADATA, clear

    # 2. The MASH hub's sink gets the plaintext; the school still gets neither field.
    inbox = tmp_path / "mash.jsonl"
    hub = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgb.cli",
            "hub",
            "subscribe",
            "mash",
            "202",
            "--sink",
            f"jsonl:{inbox}",
            "--idle-exit",
            "3",
        ],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert hub.returncode == 0, hub.stderr
    written = {r["event_id"]: r for r in map(json.loads, inbox.read_text().splitlines())}
    assert written[a["event_id"]]["narrative"] == "Synthetic narrative ALPHA-7Q"
    assert written[b["event_id"]]["child"]["confidential_address"]["line1"] == "Refuge BRAVO-3K"
    assert written[b["event_id"]]["details"]["protective_measures"] == "Measures BRAVO-3K"
    school = _by_id(settings, SCHOOL, 2)
    assert school[a["event_id"]]["narrative"] is None
    assert school[a["event_id"]]["child"]["confidential_address"] is None

    # 3. Erase child A: one line naming it by a keyed hash only.
    erased = _erase(settings, key_a)
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.startswith("1 data key destroyed") and a["child"]["nhs_number"] not in erased.stdout

    # 4. Every copy still in Kafka, re-read from the beginning, shows A's fields as erased and B's in clear.
    for topic in (INGRESS, MASH):
        seen = _by_id(settings, topic, 2)
        old_a, old_b = seen[a["event_id"]], seen[b["event_id"]]
        assert old_a["narrative"] == ERASED and old_a["details"]["protective_measures"] == ERASED
        assert old_a["child"]["confidential_address"]["line1"] == ERASED
        assert old_a["child"]["given_name"] == ERASED and old_a["child"]["date_of_birth"] is None
        assert old_a["child"]["local_authority_code"] == "202"  # routing metadata is never sealed
        assert (
            old_b["narrative"] == b["narrative"]
            and old_b["child"]["confidential_address"] == b["child"]["confidential_address"]
        )

    # 5. A hub replaying its topic through the Python API sees the same.
    replay = Subscriber(settings, "MASH", "202", group_id=f"replay-{uuid.uuid4().hex[:8]}")
    events = {e.event_id: e for e in replay.events(stop=threading.Event(), idle_timeout=3)}
    assert events[a["event_id"]].narrative == ERASED and events[b["event_id"]].narrative == b["narrative"]

    # 6. An erased child's event not yet decided is shared with no one: the filter cannot read
    # whose it is any more (fail closed); it is dead-lettered, its bytes still sealed.
    c, key_c, secrets_c = _event("CHARLIE-5M")
    _publish(settings, c)
    assert _erase(settings, key_c).returncode == 0
    with RunningFilter(settings, group_id=group_id, instance="test") as running:
        dead = read_topic(settings, "sg.dlq.v1", expect=1)
        assert running.service.counts["dead_lettered"] == 1
    assert len(read_topic(settings, MASH, expect=3, timeout=3)) == 2
    assert len(dead) == 1 and not [s for s in secrets_c if s in (dead[0].value() or b"")]
    assert _erase(settings, key_b).returncode == 0
    assert _by_id(settings, INGRESS, 3)[b["event_id"]]["narrative"] == ERASED


def test_a_file_connector_seals_what_it_publishes(kafka: Settings, tmp_path: Path) -> None:
    import csv
    import random

    from connectors.police import synthetic as police_syn

    mapping = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "police-domestic-abuse.yaml"
    export = police_syn.write_csv(
        tmp_path / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(5, random.Random(3), bad=[]),
    )
    with export.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    summaries = [row["OfficerSummary"].encode() for row in rows if row["OfficerSummary"]]
    assert summaries
    env = {**sgb_env(kafka), "SGB_FIELD_ENCRYPTION": "on"}
    command = ["connector", "run", "police", "--source", str(export), "--mapping", str(mapping)]
    run = subprocess.run(
        [sys.executable, "-m", "sgb.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    messages = read_topic(kafka, INGRESS, expect=5)
    assert len(messages) == 5
    assert not [s for s in summaries for m in messages if s in m.value()]
    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in messages]
    assert all(e["narrative"].startswith(PREFIX) for e in events if e["narrative"])
    opened = {Revealer(kafka)(e)["narrative"].encode() for e in events if e["narrative"]}
    assert opened == set(summaries)


def test_a_dead_lettered_row_keeps_no_readable_copy_when_field_encryption_is_on(
    kafka: Settings, tmp_path: Path
) -> None:
    # Issue 20, item 4: a row that failed mapping was dead-lettered with its raw bytes, its
    # narrative in clear for 30 days, which `sgb erase` could not reach.
    import csv
    import random

    from connectors.police import synthetic as police_syn

    mapping = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "police-domestic-abuse.yaml"
    export = police_syn.write_csv(
        tmp_path / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(6, random.Random(5), bad=[1, 4]),
    )
    with export.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [row["OfficerSummary"].encode() for row in rows if row["OfficerSummary"]]
    texts += [row[c].encode() for row in rows for c in ("FamilyName", "GivenName") if row.get(c)]
    env = {**sgb_env(kafka), "SGB_FIELD_ENCRYPTION": "on"}
    command = ["connector", "run", "police", "--source", str(export), "--mapping", str(mapping)]
    run = subprocess.run(
        [sys.executable, "-m", "sgb.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "2 dead-lettered" in run.stdout
    dead = read_topic(kafka, "sg.dlq.v1", expect=2)
    assert len(dead) == 2
    for message in dead:
        assert not [t for t in texts if t in (message.value() or b"")], "no readable copy of the row"
        record = Codecs(registry_for(kafka)).dead_letter.decode(message.value())
        assert record["payload"] is None and record["reason"]
        assert record["position"] and record["source_name"] == "incidents.csv"


def test_a_policy_that_masks_narrative_makes_the_filter_open_mask_and_seal_again(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    from consent import policy as policy_module

    text = policy_module.BASELINE.read_text(encoding="utf-8")
    school_rule = "    audience: SCHOOL_DSL\n    grant: [NAME, DATE_OF_BIRTH, CASE_DETAIL]\n"
    assert text.count(school_rule) == 1
    masking = tmp_path / "masking.yaml"  # the school sees the narrative's shape, masked
    masking.write_text(
        text.replace(
            school_rule,
            "    audience: SCHOOL_DSL\n"
            "    grant: [NAME, DATE_OF_BIRTH, CASE_DETAIL, THIRD_PARTY]\n"
            "    actions: {NARRATIVE: MASK}\n",
        )
    )
    settings = kafka.model_copy(update={"field_encryption": "on"})
    a, key_a, secrets_a = _event("DELTA-2P")
    _publish(settings, a)
    with RunningFilter(settings, policy_path=masking, group_id=group_id, instance="test"):
        school = read_topic(settings, SCHOOL, expect=1)
    assert len(school) == 1 and not [s for s in secrets_a if s in school[0].value()]
    sealed = Codecs(registry_for(settings)).event.decode(school[0].value())
    assert sealed["narrative"].startswith(PREFIX)  # the masked copy is sealed again
    shown = Revealer(settings)(sealed)
    assert shown["narrative"] == "********* ********* *****-**"
    assert shown["child"]["confidential_address"] is None  # a hard limit: never to a school
    assert _erase(settings, key_a).returncode == 0
    assert Revealer(settings)(sealed)["narrative"] == ERASED  # the same child key sealed the masked copy
