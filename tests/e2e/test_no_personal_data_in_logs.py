"""No personal data in logs, proved: every flow runs as the commands a user would type, with
DEBUG logging, and every line any of them writes (standard output and standard error, error
messages included) is scanned for every synthetic child's and adult's name, NHS number, UPN,
local identifiers, postcode, address line and narrative text. Kafka's own server.log is not
ours and is not scanned. What the hubs' sinks and the inbox page hold is data, not logging."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import sgb_env

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.child_keys import child_key
from sgb.simulate.data import EVENT_TYPES
from sgb.simulate.run import run_simulation

pytestmark = pytest.mark.kafka

RUNNER = "import sys\nfrom sgb.cli import main\nsys.exit(main(sys.argv[1:]))\n"
SEED, COUNT, CHILDREN, CONSENTS = 20261123, 320, 40, 60
START = "2026-11-02T08:00:00Z"


@dataclass
class Captured:
    """Everything the commands wrote, by command and stream."""

    outputs: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, stream: str, text: str) -> None:
        self.outputs[f"{name} ({stream})"] = self.outputs.get(f"{name} ({stream})", "") + text


class Sgb:
    def __init__(self, settings: Settings, tmp: Path, captured: Captured) -> None:
        self.env = {**sgb_env(settings), "SGB_LOG_LEVEL": "DEBUG"}
        self.tmp, self.captured = tmp, captured

    def run(
        self, name: str, *args: str, ok: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.captured.add(name, "stdout", result.stdout)
        self.captured.add(name, "stderr", result.stderr)
        if ok:
            assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
        return result

    def start(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
        out, err = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, *args], env=self.env, stdout=out.open("wb"), stderr=err.open("wb")
        )
        return proc, out, err

    def collect(self, name: str, out: Path, err: Path) -> None:
        self.captured.add(name, "stdout", out.read_text(errors="replace"))
        self.captured.add(name, "stderr", err.read_text(errors="replace"))


def _secrets(events: list[dict[str, Any]], consents: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Every personal value in the synthetic data, by kind."""
    found: dict[str, set[str]] = {
        k: set() for k in ("name", "NHS number", "UPN", "local id", "postcode", "address line", "narrative")
    }

    def address(value: dict[str, Any] | None) -> None:
        if value:
            found["postcode"].add(value["postcode"])
            found["address line"].update(v for v in (value.get("line1"), value.get("line2")) if v)

    for event in events:
        child = event["child"]
        found["name"].update(v for v in (child.get("given_name"), child.get("family_name")) if v)
        found["NHS number"].update(v for v in (child.get("nhs_number"),) if v)
        found["UPN"].update(v for v in (child.get("upn"),) if v)
        local_ids = (child.get("la_child_id"), child.get("police_person_reference"))
        found["local id"].update(v for v in local_ids if v)
        address(child.get("address"))
        address(child.get("confidential_address"))
        for person in event.get("related_people") or []:
            found["name"].update(v for v in (person.get("given_name"), person.get("family_name")) if v)
            address(person.get("address"))
        if event.get("narrative"):
            found["narrative"].add(event["narrative"])
        for value in (event.get("details") or {}).values():  # free text in the details, e.g. a summary
            if isinstance(value, str) and len(value) >= 25 and " " in value:
                found["narrative"].add(value)
    for record in consents:
        found["NHS number"].update(v for v in (record.get("nhs_number"),) if v)
        found["local id"].update(v for v in (record.get("la_child_id"),) if v)
    return found


def _patterns(secrets: dict[str, set[str]]) -> list[tuple[str, str, re.Pattern[str]]]:
    out = []
    for kind, values in secrets.items():
        for value in sorted(values):
            pattern = re.escape(value)
            if kind == "NHS number":  # also written 999 123 4567
                pattern = rf"{value[:3]}[ -]?{value[3:6]}[ -]?{value[6:]}"
            out.append((kind, value, re.compile(rf"(?<![\w]){pattern}(?![\w])")))
    return out


def _bad_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Three events the filter must dead-letter, each full of a real synthetic child's details."""
    codecs = Codecs(registry_for(settings))
    prod = producer(settings)
    topic = settings.topic("sg.ingress.police.v1")
    template = events[0]
    child = template["child"]
    name = f"{child['given_name']} {child['family_name']}".encode()
    # 1. Not Avro at all, though it carries the child's name and NHS number.
    prod.produce(
        topic, key=f"nhs:{child['nhs_number']}".encode(), value=b"\x07" + name + child["nhs_number"].encode()
    )
    # 2. Valid, but identifying no child (names, address and narrative still in it).
    anonymous = {
        **template,
        "event_id": "bad-no-child",
        "child": {
            **child,
            "nhs_number": None,
            "upn": None,
            "la_child_id": None,
            "police_person_reference": None,
        },
    }
    prod.produce(topic, key=b"none", value=codecs.event.encode(anonymous))
    # 3. Valid, about a known child, but with no event id.
    prod.produce(
        topic, key=str(child_key(child)).encode(), value=codecs.event.encode({**template, "event_id": ""})
    )
    prod.flush(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_text(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not seen in {path.name}: {path.read_text()[-2000:]}"
        time.sleep(0.2)


def test_no_flow_writes_personal_data_to_any_log(kafka: Settings, tmp_path: Path, group_id: str) -> None:
    captured = Captured()
    sgb = Sgb(kafka, tmp_path, captured)

    # The same synthetic population and events the simulate command will publish, for the scan.
    start = datetime.fromisoformat(START.replace("Z", "+00:00"))
    report = run_simulation(
        None,
        count=COUNT,
        children=CHILDREN,
        seed=SEED,
        consents=CONSENTS,
        output=tmp_path / "events.jsonl",
        start=start,
    )
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    consents = [json.loads(line) for line in (tmp_path / "events.consents.jsonl").read_text().splitlines()]
    assert set(report.by_type) == set(EVENT_TYPES), "the seed should give all fourteen event types"

    # The filter, as an operator runs it.
    filter_proc, filter_out, filter_err = sgb.start(
        "filter", "filter", "run", "--group", group_id, "--instance", "pii"
    )
    try:
        _wait_for_text(filter_err, "filter running", 90)
        sgb.run(
            "simulate",
            "simulate",
            "--count",
            str(COUNT),
            "--children",
            str(CHILDREN),
            "--seed",
            str(SEED),
            "--consents",
            str(CONSENTS),
            "--start",
            START,
        )
        _bad_events(kafka, _events_for_encoding(events))
        deadline = time.monotonic() + 120
        while True:  # until the filter has caught up with every ingress topic
            found = json.loads(sgb.run("status --json", "status", "--json").stdout)
            lags = [g for g in found["lags"] if g["role"] == "filter"]
            if (
                lags
                and all(g["lag"] == 0 for g in lags)
                and sum(t["end_offset"] for t in found["topics"] if t["topic"] == "sg.dlq.v1") >= 3
            ):
                break
            assert time.monotonic() < deadline, found["lags"]
            time.sleep(1)

        # Hubs subscribe, into every kind of sink but PostgreSQL (its own tests cover it).
        for audience, org, sink in (
            ("mash", "202", f"jsonl:{tmp_path / 'mash.jsonl'}"),
            ("school_dsl", "100000", f"sqlite:{tmp_path / 'school.db'}"),
            ("gp", "F83004", f"jsonl:{tmp_path / 'gp.jsonl'}"),
            ("family_help", "202", f"sqlite:{tmp_path / 'fh.db'}"),
        ):
            sgb.run(
                f"hub subscribe {audience}",
                "hub",
                "subscribe",
                audience,
                org,
                "--sink",
                sink,
                "--idle-exit",
                "3",
            )
        # A webhook that is down: retries and warnings, and nothing acknowledged.
        webhook, out, err = sgb.start(
            "hub subscribe webhook",
            "hub",
            "subscribe",
            "police_ppu",
            "metropolitan",
            "--sink",
            f"webhook:http://127.0.0.1:{_free_port()}/inbox?token=x",
        )
        time.sleep(8)
        webhook.send_signal(signal.SIGTERM)
        webhook.wait(60)
        sgb.collect("hub subscribe webhook", out, err)
        # The inbox page, read once.
        port = _free_port()
        serve, out, err = sgb.start(
            "hub serve",
            "hub",
            "serve",
            "mash",
            "202",
            "--port",
            str(port),
            "--db",
            f"sqlite:{tmp_path / 'inbox.db'}",
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                if "Why you received this" in page:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and serve.poll() is None, err.read_text()[-2000:]
            time.sleep(0.5)
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
        sgb.collect("hub serve", out, err)

        # The operator's commands, and the errors a user can provoke.
        sgb.run("status", "status")
        letters = sgb.run("dlq list", "dlq", "list").stdout
        assert "Event identifies no child" in letters and "Event has no event_id." in letters
        sgb.run("dlq replay --dry-run", "dlq", "replay", "--dry-run")
        sgb.run("dlq replay", "dlq", "replay", "--reason", "no event_id")
        sgb.run(
            "hub subscribe not onboarded",
            "hub",
            "subscribe",
            "mash",
            "999",
            "--sink",
            f"jsonl:{tmp_path / 'x.jsonl'}",
            ok=False,
        )
        sgb.run(
            "hub subscribe bad sink",
            "hub",
            "subscribe",
            "mash",
            "202",
            "--sink",
            "postgres:postgresql://sgb:pw@127.0.0.1:1/none",
            ok=False,
        )
    finally:
        filter_proc.send_signal(signal.SIGTERM)
        filter_proc.wait(60)
        sgb.collect("filter", filter_out, filter_err)

    assert (tmp_path / "mash.jsonl").read_text(), "no data reached the hubs, so the scan would prove little"
    assert any("DEBUG" in text.upper() and '"level": "debug"' in text for text in captured.outputs.values())
    lines = sum(len(text.splitlines()) for text in captured.outputs.values())
    assert lines > 200 and len(captured.outputs) >= 30, (lines, sorted(captured.outputs))
    leaks = scan(captured.outputs, _secrets(events, consents))
    assert not leaks, "personal data in logs:\n" + "\n".join(leaks[:50])


def scan(outputs: dict[str, str], secrets: dict[str, set[str]]) -> list[str]:
    """Every line that holds a personal value, as "<kind> <value> in <command> (<stream>), line N: ..."."""
    leaks = []
    for kind, value, pattern in _patterns(secrets):
        for where, text in outputs.items():
            for number, line in enumerate(text.splitlines(), 1):
                if pattern.search(line):
                    leaks.append(f"{kind} {value!r} in {where}, line {number}: {line[:200]}")
    return leaks


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """A control: the scan above would fail on a leak of any kind it looks for."""
    run_simulation(
        None,
        count=30,
        children=5,
        seed=SEED,
        output=tmp_path / "e.jsonl",
        start=datetime.fromisoformat(START.replace("Z", "+00:00")),
    )
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    secrets = _secrets(events, [])
    child = events[0]["child"]
    nhs = child["nhs_number"]
    leaky = {
        "filter (stderr)": json.dumps({"event": "decided", "child": f"{child['given_name']} x"})
        + "\n"
        + f"sgb: Event for {nhs[:3]} {nhs[3:6]} {nhs[6:]} at {child['address']['postcode']} failed.\n",
        "status (stdout)": "all well\n",
    }
    found = scan(leaky, secrets)
    assert any(f.startswith(f"name {child['given_name']!r} in filter (stderr), line 1") for f in found)
    assert any(f.startswith(f"NHS number {nhs!r} in filter (stderr), line 2") for f in found)
    assert any(f.startswith("postcode") for f in found)
    reason = "Event identifies no child (no NHS number, local id, police reference or UPN).\n"
    assert not scan({"x (stdout)": reason}, secrets)


def _events_for_encoding(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON-shaped events back in the shape the Avro encoder takes."""
    from schemas.jsonform import event_from_json

    return [event_from_json(e) for e in events if e["event_type"] == "DOMESTIC_ABUSE_INCIDENT"][:1]
