"""``sgb dlq list`` and ``sgb dlq replay``: metadata only, each dead letter replayed at most once,
source-file dead letters skipped, and a replayed event delivered by the filter after the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import RunningFilter, read_topic, sgb_env
from factories import domestic_abuse_incident

from broker.clients import producer
from broker.settings import Settings
from broker.wire import dead_letters as deadletter
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for

pytestmark = pytest.mark.kafka

RUNNER = "import sys\nfrom sgb.cli import main\nsys.exit(main(sys.argv[1:]))\n"
INGRESS = "sg.ingress.police.v1"


def sgb(settings: Settings, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def dead_letters(settings: Settings) -> list[bytes]:
    """Two fixable events, one undecodable payload, one bad row from a connector's file."""
    codecs = Codecs(registry_for(settings))
    prod = producer(settings)
    ingress = settings.topic(INGRESS)
    payloads = []
    for offset in (0, 1):
        payload = codecs.event.encode(domestic_abuse_incident())
        payloads.append(payload)
        deadletter.send(
            prod,
            settings,
            codecs,
            component="filter",
            reason="Fixable: the registry was unreachable.",
            payload=payload,
            origin=deadletter.Origin(ingress, 0, offset),
            key=b"nhs:9991234567",
            event_id=f"fixable-{offset}",
        )
        prod.flush(10)
    deadletter.send(
        prod,
        settings,
        codecs,
        component="filter",
        reason="Message is not valid Avro.",
        payload=b"\x00\x00\x00\x00\x01Testy Childe garbage",
        origin=deadletter.Origin(ingress, 1, 9),
    )
    prod.flush(10)
    deadletter.send(
        prod,
        settings,
        codecs,
        component="connector:police",
        reason="Row 3 has no child identifier.",
        payload=b"Testy,Childe,1 Synthetic Row,LS1 4AP",
        origin=deadletter.Origin(source_name="drop-2026-11-23.csv", position="line 3"),
    )
    prod.flush(10)
    return payloads


def test_list_shows_metadata_only(kafka: Settings) -> None:
    dead_letters(kafka)
    out = sgb(kafka, "dlq", "list")
    lines = out.splitlines()
    assert len(lines) == 5 and lines[-1] == "4 of 4 dead letter(s) shown."
    fixable = "Fixable: the registry was unreachable."
    assert f"filter  {kafka.topic(INGRESS)}[0]@1  {fixable}  event fixable-1" in out
    assert "connector:police  drop-2026-11-23.csv line 3  Row 3 has no child identifier.  event -" in out
    assert "Testy" not in out and "Synthetic Row" not in out and "LS1 4AP" not in out
    assert sgb(kafka, "dlq", "list", "--reason", "FIXABLE").splitlines()[-1] == (
        "2 of 2 dead letter(s) shown matching the reason."
    )
    newest = sgb(kafka, "dlq", "list", "--limit", "1").splitlines()
    assert len(newest) == 2 and "drop-2026-11-23.csv" in newest[0]


def test_replay_sends_each_dead_letter_once_and_skips_source_files(kafka: Settings, group_id: str) -> None:
    payloads = dead_letters(kafka)
    dry = sgb(kafka, "dlq", "replay", "--dry-run")
    assert "Dry run: 3 would be replayed, 0 already replayed, 1 from source files skipped" in dry
    assert "cannot be replayed to a topic" in dry
    assert not read_topic(kafka, INGRESS, expect=1, timeout=2)

    with RunningFilter(kafka, group_id=group_id, instance="test"):
        first = sgb(kafka, "dlq", "replay", "--reason", "fixable")
        assert first.splitlines()[-1].startswith("2 dead letter(s) replayed to their origin topic, 0 already")
        again = sgb(kafka, "dlq", "replay", "--reason", "fixable")
        assert again.splitlines()[-1].startswith("0 dead letter(s) replayed to their origin topic, 2 already")
        replayed = read_topic(kafka, INGRESS, expect=3, timeout=10)
        assert sorted(m.value() for m in replayed) == sorted(payloads)
        assert all(m.key() == b"nhs:9991234567" for m in replayed)
        assert all(
            dict(m.headers())["sgb.replayed_from"].startswith(kafka.topic("sg.dlq.v1").encode())
            for m in replayed
        )
        # After the fix the filter delivers the replayed events like any other.
        assert len(read_topic(kafka, "sg.deliver.mash.202.v1", expect=2, timeout=60)) == 2

        # The undecodable one goes round again: replay says so the next time.
        rest = sgb(kafka, "dlq", "replay", "--reason", "avro")
        assert rest.splitlines()[-1].startswith("1 dead letter(s) replayed")
        assert len(read_topic(kafka, "sg.dlq.v1", expect=5, timeout=60)) == 5
    warned = sgb(kafka, "dlq", "replay", "--dry-run")
    assert "1 of these failed again after an earlier replay of the same payload" in warned
    assert "Dry run: 1 would be replayed, 3 already replayed, 1 from source files skipped" in warned
