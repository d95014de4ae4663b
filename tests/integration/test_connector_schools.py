"""The education connector on the real broker: the webhook over real HTTP (`sgb connector
serve-webhook` with a token from `sgb connector school-token add`), 503 while Kafka is down,
and a Common Transfer File through `sgb connector run education`."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.education import synthetic as syn
from connectors.education.tokens import TokenStore
from connectors.education.webhook import ConcernWebhook
from tests.conftest import sgb_env
from tests.integration.test_connector_files import read_all

SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"

pytestmark = pytest.mark.kafka


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


@contextmanager
def serving_webhook(
    kafka: Settings, tmp_path: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, str]]:
    """`sgb connector serve-webhook` on a free port, and a school's token."""
    env = {**sgb_env(kafka), **(env or {})}
    tokens = tmp_path / "tokens"
    added = subprocess.run(
        [sys.executable, "-c", SGB, "connector", "school-token", "add", "100000", "--tokens", str(tokens)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = added.stdout.strip()
    assert len(token) >= 40 and token not in tokens.read_text()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SGB,
            "connector",
            "serve-webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tokens",
            str(tokens),
            "--ack-timeout",
            "5",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/livez")
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield base, token
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def webhook_process(kafka: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with serving_webhook(kafka, tmp_path) as served:
        yield served


def test_the_webhook_continues_a_schools_trace_and_counts_what_it_published(
    kafka: Settings, tmp_path: Path
) -> None:
    spans, metrics_port = tmp_path / "spans.jsonl", free_port()
    tracing = {"SGB_TRACING": f"file:{spans}"}
    with serving_webhook(kafka, tmp_path, tracing, ("--metrics-port", str(metrics_port))) as (base, token):
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").status_code == 200
        trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        headers = {"Authorization": f"Bearer {token}", "traceparent": f"00-{trace_id}-{parent}-01"}
        body = syn.concern_payload(random.Random(5), 1)
        assert httpx.post(f"{base}/v1/concerns", json=body, headers=headers, timeout=20).status_code == 202
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'sgb_connector_records_total{agency="EDUCATION",outcome="published"} 1.0' in scraped
        assert (
            'sgb_connector_records_total{agency="EDUCATION",outcome="published"} 1.0'
            in httpx.get(f"{base}/metrics").text
        )
    (message,) = read_all(kafka, "sg.ingress.education.v1")
    carried = dict(message.headers() or [])["traceparent"].decode()
    assert carried.startswith(f"00-{trace_id}-") and not carried.startswith(f"00-{trace_id}-{parent}")
    recorded = {s["name"]: s for s in map(json.loads, spans.read_text().splitlines())}
    assert recorded["map"]["parent_id"] == f"0x{parent}"
    assert recorded["publish"]["parent_id"] == recorded["map"]["context"]["span_id"]
    assert carried.split("-")[2] == recorded["publish"]["context"]["span_id"].removeprefix("0x")


def test_webhook_accepts_concerns_only_once_kafka_has_them(
    kafka: Settings, webhook_process: tuple[str, str]
) -> None:
    base, token = webhook_process
    auth = {"Authorization": f"Bearer {token}"}
    rng = random.Random(1)
    with httpx.Client(base_url=base, timeout=20) as client:
        doc = client.get("/openapi.json").json()
        assert "post" in doc["paths"]["/v1/concerns"]
        body = syn.concern_payload(rng, 1)
        ok = client.post("/v1/concerns", json=body, headers=auth)
        assert ok.status_code == 202, ok.text
        again = client.post("/v1/concerns", json=body, headers=auth)  # a resend: same event id
        assert again.json()["event_id"] == ok.json()["event_id"]
        assert client.post("/v1/concerns", json=body).status_code == 401
        assert (
            client.post("/v1/concerns", json=body, headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        assert client.post("/v1/concerns", content=b"{not json", headers=auth).status_code == 400
        secret = "Secretname-Zebedee"
        bad = syn.concern_payload(rng, 2, risk=secret, child={"upn": secret})
        answer = client.post("/v1/concerns", json=bad, headers=auth)
        assert answer.status_code == 422 and secret not in answer.text
        assert {f["field"] for f in answer.json()["fields"]} == {"risk", "child.upn"}
        wrong_upn = client.post(
            "/v1/concerns", json=syn.concern_payload(rng, 3, child={"upn": "A12345678901Z"}), headers=auth
        )
        assert wrong_upn.status_code == 422 and "A12345678901Z" not in wrong_upn.text

    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.education.v1")]
    assert [e["event_id"] for e in events] == [ok.json()["event_id"]] * 2
    assert (
        events[0]["event_type"] == "SCHOOL_SAFEGUARDING_CONCERN"
        and events[0]["source"]["organisation"] == "100000"
    )


class InProcess:
    """A ConcernWebhook under uvicorn in a thread."""

    def __init__(self, webhook: ConcernWebhook) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            webhook.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_http(f"http://127.0.0.1:{self.port}/livez")
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def test_webhook_answers_503_while_kafka_is_down(kafka: Settings, tmp_path: Path) -> None:
    tokens = TokenStore(tmp_path / "tokens")
    token = tokens.add("100000")
    closed = kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    body = syn.concern_payload(random.Random(2), 1)
    auth = {"Authorization": f"Bearer {token}"}
    # Schemas registered earlier, then Kafka gone: the produce is not acknowledged in time.
    codecs = Codecs(registry_for(kafka))
    _ = codecs.event
    with InProcess(ConcernWebhook(closed, tokens, ack_timeout=2, codecs=codecs)) as base:
        began = time.monotonic()
        answer = httpx.post(f"{base}/v1/concerns", json=body, headers=auth, timeout=30)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert time.monotonic() - began < 15
    # Kafka gone from the start: not ready, 503 at once.
    with InProcess(ConcernWebhook(closed, tokens, ack_timeout=2)) as base:
        assert httpx.get(f"{base}/readyz").status_code == 503
        assert httpx.post(f"{base}/v1/concerns", json=body, headers=auth, timeout=30).status_code == 503


def test_common_transfer_file_through_the_connector(kafka: Settings, tmp_path: Path) -> None:
    rng = random.Random(3)
    pupils = [syn.pupil(rng, i, authorised=10 * (i % 4), unauthorised=10 * (i % 4)) for i in range(20)]
    pupils[7].dob = "31/02/2014"
    ctf = syn.write_ctf(tmp_path / "ctf.xml", pupils)
    cmd = [
        sys.executable,
        "-c",
        SGB,
        "connector",
        "run",
        "education",
        "--source",
        str(ctf),
        "--format",
        "ctf",
    ]
    result = subprocess.run(cmd, env=sgb_env(kafka), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    # i % 4 == 2 (13% absent) and 3 (20%) alert: 10 pupils, one with an impossible DOB.
    assert "10 read, 9 published, 1 dead-lettered" in result.stdout, result.stdout
    dead = [m.value() for m in read_all(kafka, "sg.dlq.v1")]
    assert len(dead) == 1 and b"DOB is not a real date." in dead[0]
    rerun = subprocess.run(
        [*cmd[:-2], "--format", "ctf"],
        env=sgb_env(kafka),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "0 published" in rerun.stdout
