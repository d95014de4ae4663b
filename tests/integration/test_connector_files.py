"""File connectors on the real broker: what is published, what is dead-lettered, and a restart
after SIGKILL that neither loses nor duplicates (read back with ``read_committed``)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from broker.clients import consumer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.health import synthetic as health_syn
from connectors.police import synthetic as police_syn

MAPPINGS = Path(__file__).resolve().parents[2] / "connectors" / "mappings"
DA_MAPPING = MAPPINGS / "police-domestic-abuse.yaml"
HEALTH_PROFILE = MAPPINGS / "health-example.yaml"

# The connector command, registered here until sgb/cli/__init__.py lists it.
SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"

pytestmark = pytest.mark.kafka


def sgb_connector(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-c", SGB, "connector", "run", *args]


def env_for(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SGB_BOOTSTRAP_SERVERS": settings.bootstrap,
            "SGB_TOPIC_PREFIX": settings.topic_prefix,
            "SGB_STATE_DIR": str(settings.state_dir),
            "SGB_LOG_FORMAT": "json",
        }
    )
    return env


def high_watermark(cons: Any, tp: TopicPartition) -> int:
    """A partition's end, retrying while a just-created topic's leadership settles."""
    for _ in range(40):
        try:
            return int(cons.get_watermark_offsets(tp, timeout=10)[1])
        except KafkaException:
            time.sleep(0.25)
    raise AssertionError(f"no leader for {tp.topic} [{tp.partition}]")


def read_all(settings: Settings, logical: str, timeout: float = 60.0) -> list[Any]:
    """Every committed message of a topic, read to its end (read_committed skips aborted ones)."""
    topic = settings.topic(logical)
    cons = consumer(settings, f"check-{uuid.uuid4().hex[:8]}")
    try:
        meta = cons.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        ends = {tp.partition: high_watermark(cons, tp) for tp in parts}
        cons.assign(parts)
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out += [m for m in cons.consume(1000, timeout=0.5) if not m.error()]
            positions = cons.position([TopicPartition(topic, p) for p in ends])
            if all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in positions):
                return out
        raise AssertionError(f"{topic} was not read to its end in {timeout} s")
    finally:
        cons.close()


def run_connector(settings: Settings, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sgb_connector(settings, *args),
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_byte_that_is_not_utf8_dead_letters_its_row_and_the_rest_goes_through(
    kafka: Settings, tmp_path: Path
) -> None:
    # Issue 20, item 7: before, one such byte stopped the file there: the rows after it were
    # neither published nor dead-lettered, with no row number, and every re-run stopped there.
    n = 40
    export = police_syn.write_csv(
        tmp_path / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(n, random.Random(3)),
    )
    lines = export.read_bytes().split(b"\n")
    lines[11] = lines[11].replace(b",", b",\xe9\xff", 1)  # data row 11 is on line 12
    export.write_bytes(b"\n".join(lines))

    result = run_connector(kafka, "police", "--source", str(export), "--mapping", str(DA_MAPPING))
    assert result.returncode == 0, result.stderr
    assert f"{n} read, {n - 1} published, 1 dead-lettered, 0 skipped" in result.stdout
    dead = read_all(kafka, "sg.dlq.v1")
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers() or []}
    assert "not text in the utf-8 encoding" in headers["sgb.reason"]
    assert headers["sgb.source.position"] == "row 12" and headers["sgb.source.name"] == "incidents.csv"
    assert len(read_all(kafka, "sg.ingress.police.v1")) == n - 1


def test_police_csv_publishes_good_rows_and_dead_letters_bad_ones(kafka: Settings, tmp_path: Path) -> None:
    n, bad = 300, [7, 50, 51, 222]
    export = police_syn.write_csv(
        tmp_path / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(n, random.Random(1), bad=bad),
    )

    result = run_connector(kafka, "police", "--source", str(export), "--mapping", str(DA_MAPPING))
    assert result.returncode == 0, result.stderr
    assert f"{n} read, {n - len(bad)} published, {len(bad)} dead-lettered, 0 skipped" in result.stdout

    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.police.v1")]
    assert len(events) == n - len(bad)
    assert len({e["event_id"] for e in events}) == len(events)
    assert {e["event_type"] for e in events} == {"DOMESTIC_ABUSE_INCIDENT"}
    assert all(
        e["source"]["agency"] == "POLICE" and e["child"]["nhs_number"].startswith("999") for e in events
    )

    letters = [codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1")]
    assert sorted(d["position"] for d in letters) == sorted(f"row {i + 2}" for i in bad)
    assert all(d["source_name"] == "incidents.csv" and d["component"] == "connector:police" for d in letters)
    reasons = {d["position"]: d["reason"] for d in letters}
    assert reasons["row 9"] == "child.nhs_number: NHS number check digit does not match."
    assert "IncidentDateTime" in reasons["row 52"] and "RiskToChild" in reasons["row 53"]
    # The dead letter keeps a one-row CSV (header and row) for replay; the reason holds no values.
    assert letters[0]["payload"].startswith(b"IncidentRef,")
    for letter in letters:
        row = letter["payload"].decode().splitlines()[1]
        assert not any(len(v) > 3 and v in letter["reason"] for v in row.split(","))

    # Run again: everything is already done, nothing is sent twice.
    again = run_connector(kafka, "police", "--source", str(export), "--mapping", str(DA_MAPPING))
    assert again.returncode == 0, again.stderr
    assert f"{n} read, 0 published, 0 dead-lettered, {n} skipped as already done" in again.stdout
    assert len(read_all(kafka, "sg.ingress.police.v1")) == n - len(bad)


def test_fhir_ndjson_and_bundle(kafka: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    rng = random.Random(2)
    health_syn.write_ndjson(folder / "a.ndjson", health_syn.fhir_resources(30, rng, bad=[4]))
    health_syn.write_bundle(folder / "b.json", health_syn.fhir_resources(9, rng, first=30))
    (folder / "c.ndjson").write_text('{"resourceType": "Encounter", "status": 3}\nnot json\n')

    result = run_connector(kafka, "health", "--source", str(folder), "--mapping", str(HEALTH_PROFILE))
    assert result.returncode == 0, result.stderr
    # 39 event-bearing resources, each after its Patient: 78 + 2 lines; one reference is dangling.
    assert (
        "3 file(s): 80 read, 38 published, 3 dead-lettered, 0 skipped as already done, 39 with nothing"
        in result.stdout
    )

    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.health.v1")]
    assert Counter(e["event_type"] for e in events) == {
        "EMERGENCY_ATTENDANCE": 13,
        "HEALTH_SAFEGUARDING_CONCERN": 12,
        "WAS_NOT_BROUGHT": 13,
    }
    letters = {
        (d["source_name"], d["position"]): d["reason"]
        for d in (codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1"))
    }
    assert (
        letters[("a.ndjson", "line 10")]
        == "Flag.subject refers to a Patient that is not in the file or its folder "
        "(or not among the patients_in_memory most recently used)."
    )
    assert letters[("c.ndjson", "line 2")] == "The line is not valid JSON."
    assert "does not match FHIR R4" in letters[("c.ndjson", "line 1")]


def test_restart_after_sigkill_neither_loses_nor_duplicates(kafka: Settings, tmp_path: Path) -> None:
    n, bad = 1500, list(range(10, 1500, 100))
    export = police_syn.write_csv(
        tmp_path / "big.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(n, random.Random(3), bad=bad),
    )
    checkpoint = kafka.state_dir / "connectors" / "police-csv" / "files"
    args = ("police", "--source", str(export), "--mapping", str(DA_MAPPING), "--batch-size", "50")

    proc = subprocess.Popen(
        sgb_connector(kafka, *args, "--throttle", "400"),
        env=env_for(kafka),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        done = 0
        while time.monotonic() < deadline and done < 300:
            files = list(checkpoint.glob("*.json"))
            done = json.loads(files[0].read_text())["done"] if files else 0
            time.sleep(0.05)
        assert 300 <= done < n, f"connector did not get mid-file (done={done})"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)

    result = run_connector(kafka, *args)
    assert result.returncode == 0, result.stderr
    assert "dead-lettered" in result.stdout and "skipped as already done" in result.stdout

    codecs = Codecs(registry_for(kafka))
    ingress = read_all(kafka, "sg.ingress.police.v1")
    ids = [codecs.event.decode(m.value())["event_id"] for m in ingress]
    assert len(ids) == n - len(bad), "lost or duplicated events"
    assert len(set(ids)) == len(ids)
    letters = [codecs.dead_letter.decode(m.value())["position"] for m in read_all(kafka, "sg.dlq.v1")]
    assert sorted(letters) == sorted(f"row {i + 2}" for i in bad)


def test_watch_mode_picks_up_new_files_and_stops_cleanly(kafka: Settings, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    rng = random.Random(4)
    police_syn.write_csv(
        drop / "first.csv", police_syn.DOMESTIC_ABUSE_COLUMNS, police_syn.domestic_abuse_rows(20, rng)
    )
    proc = subprocess.Popen(
        sgb_connector(
            kafka,
            "police",
            "--source",
            str(drop),
            "--mapping",
            str(DA_MAPPING),
            "--watch",
            "--poll-interval",
            "0.2",
        ),
        env=env_for(kafka),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A file written under a temporary name and renamed is read once it has settled.
        part = drop / "second.csv.part"
        police_syn.write_csv(part, police_syn.DOMESTIC_ABUSE_COLUMNS, police_syn.domestic_abuse_rows(15, rng))
        part.rename(drop / "second.csv")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(read_all(kafka, "sg.ingress.police.v1")) < 35:
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "2 file(s): 35 read, 35 published" in out and "Stopped on request" in out
    assert len(read_all(kafka, "sg.ingress.police.v1")) == 35


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("police", "--source", "{tmp}/x.csv"), "The police connector needs --mapping FILE"),
        (
            ("police", "--source", "{tmp}/x.csv", "--mapping", "{tmp}/bad.yaml"),
            "Mapping file {tmp}/bad.yaml is invalid at event.child.nhs_numbr: is not a field of Child.",
        ),
        (
            ("police", "--source", "{tmp}/missing", "--mapping", str(DA_MAPPING)),
            "Source {tmp}/missing does not exist.",
        ),
        (("health", "--source", "mllp://nowhere"), "is not mllp://HOST:PORT"),
        (
            ("police", "--source", "mllp://127.0.0.1:2575"),
            "Only the health connector listens for HL7 v2 over MLLP.",
        ),
    ],
)
def test_bad_input_is_one_sentence(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    (tmp_path / "bad.yaml").write_text(DA_MAPPING.read_text().replace("nhs_number:", "nhs_numbr:"))
    settings = Settings(bootstrap_servers="127.0.0.1:1", state_dir=tmp_path / "state")
    result = run_connector(settings, *(a.format(tmp=tmp_path) for a in args), timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sgb: ")]
    assert len(lines) == 1 and lines[0].endswith("."), result.stderr
    assert fragment.format(tmp=tmp_path) in lines[0]


def test_missing_topics_stop_the_connector_with_one_sentence(kafka: Settings, tmp_path: Path) -> None:
    export = police_syn.write_csv(
        tmp_path / "x.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(2, random.Random(1)),
    )
    elsewhere = kafka.model_copy(update={"topic_prefix": "nothing-declared."})
    result = run_connector(elsewhere, "police", "--source", str(export), "--mapping", str(DA_MAPPING))
    assert result.returncode == 1
    assert (
        "sgb: Topic nothing-declared.sg.ingress.police.v1 does not exist; run `sgb topics apply` first."
        in result.stderr
    )
