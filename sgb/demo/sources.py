"""The demo's agency sources: synthetic files through the real connector command, and an MLLP
client sending ADT messages to the real listener, as a hospital integration engine would."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import connectors
from broker.exceptions import SgbError
from broker.settings import Settings
from sgb.demo.report import Echo

MAPPINGS = Path(connectors.__file__).resolve().parent / "mappings"  # package data
START, END = b"\x0b", b"\x1c\x0d"


def _env(settings: Settings) -> dict[str, str]:
    """Every setting of the demo (provenance and field encryption included) for a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGB_") or k == "SGB_CONFIG"}
    env.update(settings.as_environment())
    env["SGB_LOG_FORMAT"] = "json"
    return env


def _sgb(settings: Settings, logs: TextIO, *args: str) -> str:
    logs.flush()
    result = subprocess.run(
        [sys.executable, "-m", "sgb.cli", *args],
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=logs,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode not in (0, 1):
        msg = f"`sgb {args[0]} {args[1]}` failed (exit {result.returncode}); see the demo's log file."
        raise SgbError(msg)
    return "\n  ".join(line for line in result.stdout.strip().splitlines() if line.strip())


def run_file_connectors(settings: Settings, work: Path, echo: Echo, rng: random.Random, logs: TextIO) -> None:
    """Write a police CSV export (one row deliberately bad) and a FHIR NDJSON file, and run
    ``sgb connector run`` on each exactly as an agency would."""
    from connectors.health.synthetic import fhir_resources, write_ndjson
    from connectors.police.synthetic import DOMESTIC_ABUSE_COLUMNS, domestic_abuse_rows, write_csv

    police = work / "police"
    police.mkdir(parents=True, exist_ok=True)
    write_csv(police / "incidents.csv", DOMESTIC_ABUSE_COLUMNS, domestic_abuse_rows(12, rng, bad=[5]))
    echo(
        "Police connector: sgb connector run police --source incidents.csv "
        "--mapping connectors/mappings/police-domestic-abuse.yaml"
    )
    echo(
        "  "
        + _sgb(
            settings,
            logs,
            "connector",
            "run",
            "police",
            "--source",
            str(police / "incidents.csv"),
            "--mapping",
            str(MAPPINGS / "police-domestic-abuse.yaml"),
            "--name",
            f"demo-police-{rng.random()}",
        )
    )
    health = work / "health"
    health.mkdir(parents=True, exist_ok=True)
    write_ndjson(health / "export.ndjson", fhir_resources(9, rng))
    echo("Health connector (FHIR R4 NDJSON): sgb connector run health --source export.ndjson")
    echo(
        "  "
        + _sgb(
            settings,
            logs,
            "connector",
            "run",
            "health",
            "--source",
            str(health / "export.ndjson"),
            "--mapping",
            str(MAPPINGS / "health-example.yaml"),
            "--name",
            f"demo-fhir-{rng.random()}",
        )
    )


def run_mllp(settings: Settings, echo: Echo, rng: random.Random, logs: TextIO, count: int = 5) -> None:
    """Start the MLLP listener, send ``count`` ADT^A04 messages, print each acknowledgement code."""
    from connectors.health.synthetic import adt_message

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgb.cli",
            "connector",
            "run",
            "health",
            "--source",
            f"mllp://127.0.0.1:{port}",
            "--mapping",
            str(MAPPINGS / "health-example.yaml"),
            "--name",
            f"demo-mllp-{port}",
        ],
        env=_env(settings),
        stdout=logs,
        stderr=logs,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline or listener.poll() is not None:
                    msg = "The MLLP listener did not start."
                    raise SgbError(msg) from None
                time.sleep(0.2)
        codes, retries = [], 0
        with client:
            for i in range(count):
                message = START + adt_message(i, rng).encode() + END
                for _ in range(20):  # as an integration engine does: AE means "send it again"
                    code = _send(client, message)
                    if code != "AE":
                        break
                    retries += 1
                    time.sleep(0.5)
                codes.append(code)
        echo(
            f"Health connector (HL7 v2 over MLLP): sent {count} ADT^A04 messages, acknowledgements: "
            f"{' '.join(codes)} (AA only once Kafka has the event; {retries} AE answered while it was "
            "still connecting, and re-sent)"
        )
    finally:
        listener.terminate()
        listener.wait(30)


def _send(client: socket.socket, message: bytes) -> str:
    client.sendall(message)
    reply = b""
    while END not in reply:
        chunk = client.recv(4096)
        if not chunk:
            break
        reply += chunk
    msa = next((seg for seg in reply.decode(errors="replace").split("\r") if seg.startswith("MSA")), "")
    return msa.split("|")[1] if "|" in msa else "?"


def run_school_and_la(settings: Settings, work: Path, echo: Echo, rng: random.Random, logs: TextIO) -> None:
    """A CIN census return twice (the second run publishes nothing: only changes become
    events), a Common Transfer File, and a school posting a concern to the webhook."""
    from connectors.education.synthetic import pupil, write_ctf
    from connectors.local_authority.synthetic import cin_children, write_cin

    la = work / "cin"
    la.mkdir(parents=True, exist_ok=True)
    write_cin(la / "cin-2024.xml", cin_children(8, rng), la="202")
    name = f"local_authority-demo-cin-{rng.randrange(1 << 30)}"
    for attempt in ("first run", "same return again"):
        echo(
            f"Local authority connector (CIN census, {attempt}): sgb connector run local_authority --format cin"
        )
        echo(
            "  "
            + _sgb(
                settings,
                logs,
                "connector",
                "run",
                "local_authority",
                "--format",
                "cin",
                "--source",
                str(la / "cin-2024.xml"),
                "--la",
                "202",
                "--name",
                name,
            )
        )
    school = work / "ctf"
    school.mkdir(parents=True, exist_ok=True)
    write_ctf(
        school / "ctf.xml",
        [pupil(rng, i, possible=300, authorised=10, unauthorised=40 + i) for i in range(4)],
    )
    echo("School connector (Common Transfer File): sgb connector run education --format ctf")
    echo(
        "  "
        + _sgb(
            settings,
            logs,
            "connector",
            "run",
            "education",
            "--format",
            "ctf",
            "--source",
            str(school / "ctf.xml"),
            "--name",
            f"education-demo-ctf-{rng.randrange(1 << 30)}",
        )
    )
    _webhook(settings, work, echo, rng, logs)


def _webhook(settings: Settings, work: Path, echo: Echo, rng: random.Random, logs: TextIO) -> None:
    import httpx

    from connectors.education.synthetic import concern_payload

    tokens = work / "school-tokens"
    token = _sgb(
        settings, logs, "connector", "school-token", "add", "100000", "--tokens", str(tokens)
    ).split()[-1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgb.cli",
            "connector",
            "serve-webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tokens",
            str(tokens),
        ],
        env=_env(settings),
        stdout=logs,
        stderr=logs,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                msg = "The school webhook did not start."
                raise SgbError(msg)
            time.sleep(0.3)
        body = concern_payload(rng, 1)
        good = httpx.post(
            f"{url}/v1/concerns", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        wrong = httpx.post(
            f"{url}/v1/concerns", json=body, headers={"Authorization": "Bearer wrong"}, timeout=30
        )
        echo(
            f"School webhook: POST /v1/concerns answered {good.status_code} (Kafka has it); "
            f"with a wrong token {wrong.status_code}."
        )
    finally:
        server.terminate()
        server.wait(30)
