"""What an operator's Prometheus, Grafana and trace backend see of a running system: a police
connector watching a drop folder, the filter and a MASH hub, each its own ``sgb`` process with
``--metrics-port`` and ``SGB_TRACING=file:...``.

* every query of the shipped Grafana dashboard selects data from the scrapes of those three;
* each process exports only its own series;
* one trace spans the three processes: ``map`` > ``publish`` in the connector, ``decide`` in the
  filter, ``deliver`` in the hub, linked through the W3C trace context in Kafka headers;
* a connector log line written inside a record's span carries that trace's id;
* confluent-kafka's own AvroDeserializer decodes the MASH's delivery topic through
  ``sgb schemas serve`` (the embedded registry's read-only Confluent REST face).
"""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from prometheus_client.parser import text_string_to_metric_families

from broker.cluster.topics import apply
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.police import synthetic as police_syn
from schemas.topics import load_declaration
from tests.conftest import read_topic, sgb_env

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "sgb-dashboard.json"
DA_MAPPING = REPO / "connectors" / "mappings" / "police-domestic-abuse.yaml"
ROWS, BAD = 9, 4  # rows 0, 3 and 6 are children of LA 202, whose MASH subscribes; row 4 is malformed

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    spans: Path
    ready: str = "/readyz"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.popen.poll() is None, f"{self.name} exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(self.url(self.ready), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} was not ready within {timeout:.0f} s")


@dataclass
class Observed:
    kafka: Settings
    processes: dict[str, Process]
    scrapes: dict[str, str]

    def spans(self, name: str) -> list[dict[str, Any]]:
        path = self.processes[name].spans
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        text = self.processes[name].log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _start(kafka: Settings, tmp: Path, name: str, *args: str, metrics: bool = True) -> Process:
    port = _free_port()
    spans = tmp / f"spans-{name}.jsonl"
    env = {**sgb_env(kafka), "SGB_TRACING": f"file:{spans}"}
    log = tmp / f"{name}.log"
    popen = subprocess.Popen(
        [sys.executable, "-m", "sgb.cli", *args, "--metrics-port" if metrics else "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Process(name, popen, port, log, spans, "/readyz" if metrics else "/subjects")


@pytest.fixture(scope="module")
def observed(kafka_session: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """The three processes (and `sgb schemas serve`) run until the MASH has its three events and
    are scraped; they are stopped after the module's tests."""
    tmp = tmp_path_factory.mktemp("observability")
    kafka = kafka_session.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}.", "state_dir": tmp / "state"}
    )
    apply(kafka, load_declaration())
    drop, inbox = tmp / "drop", tmp / "mash.jsonl"
    drop.mkdir()
    processes = [
        _start(kafka, tmp, "filter", "filter", "run"),
        _start(kafka, tmp, "hub", "hub", "subscribe", "mash", "202", "--sink", f"jsonl:{inbox}"),
        _start(
            kafka, tmp, "connector", "connector", "run", "police", "--source", str(drop),
            "--mapping", str(DA_MAPPING), "--watch", "--poll-interval", "0.2",
        ),
        _start(kafka, tmp, "registry", "schemas", "serve", metrics=False),
    ]  # fmt: skip
    try:
        for process in processes:
            process.wait_ready()
        rows = police_syn.domestic_abuse_rows(ROWS, random.Random(19), bad=[BAD])
        police_syn.write_csv(tmp / "incidents.part", police_syn.DOMESTIC_ABUSE_COLUMNS, rows)
        (tmp / "incidents.part").rename(drop / "incidents.csv")
        deadline = time.monotonic() + 90
        while not inbox.exists() or len(inbox.read_text().splitlines()) < 3:
            assert time.monotonic() < deadline, "the MASH never received its three events"
            time.sleep(0.3)
        time.sleep(1.5)  # the filter's lag gauge and the hub's next poll
        scrapes = {p.name: httpx.get(p.url("/metrics"), timeout=5).text for p in processes[:3]}
        yield Observed(kafka, {p.name: p for p in processes}, scrapes)
    finally:
        for process in processes:
            process.popen.send_signal(signal.SIGTERM)
        for process in processes:
            process.popen.wait(30)


# -- Grafana ------------------------------------------------------------------------------------
SELECTOR = re.compile(r"\b(sgb_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!=|=)\s*"([^"]*)"')


def _queries() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[str]:
        for panel in panels:
            yield from (target["expr"] for target in panel.get("targets", []))
            yield from walk(panel.get("panels", []))

    return list(walk(json.loads(DASHBOARD.read_text())["panels"]))


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def _selects(sample: tuple[str, dict[str, str], float], name: str, matchers: str) -> bool:
    if sample[0] != name:
        return False
    for label, op, value in MATCHER.findall(matchers.replace("$audience", ".*")):
        got = sample[1].get(label, "")
        if (op == "=" and got != value) or (op == "!=" and got == value):
            return False
        if op == "=~" and not re.fullmatch(value, got):
            return False
    return True


def test_every_dashboard_query_selects_data_from_the_running_system(observed: Observed) -> None:
    samples = [s for text in observed.scrapes.values() for s in _samples(text)]
    queries = _queries()
    assert len(queries) >= 15
    for query in queries:
        for name, matchers in SELECTOR.findall(query):
            found = [s for s in samples if _selects(s, name, matchers or "")]
            assert found, f"{query!r}: no series {name}{matchers} in any scrape"
            if name.endswith("_bucket"):  # a quantile needs observations, not only empty buckets
                assert any(s[2] > 0 for s in found), f"{query!r}: {name} has no observations"
    connector = [s for s in samples if s[0] == "sgb_connector_records_total" and s[1]["agency"] == "POLICE"]
    assert {s[1]["outcome"]: s[2] for s in connector} == {
        "published": ROWS - 1,
        "dead_lettered": 1,
        "skipped": 0,
    }


def test_each_process_exports_its_own_series(observed: Observed) -> None:
    for name, text in observed.scrapes.items():
        assert "sgb_build_info{" in text, name
        assert ("sgb_filter_batch_seconds_count" in text) == (name == "filter"), name
        assert ("sgb_hub_events_written_total{" in text) == (name == "hub"), name
        assert ("sgb_connector_records_total{" in text) == (name == "connector"), name
    assert re.search(
        r'sgb_filter_lag_messages\{topic="[^"]*sg\.ingress\.police\.v1"\} 0\.0', observed.scrapes["filter"]
    )


# -- OpenTelemetry --------------------------------------------------------------------------------
def test_one_trace_spans_connector_filter_and_hub(observed: Observed) -> None:
    by_id = {
        s["context"]["span_id"]: (name, s)
        for name, spans in ((n, observed.spans(n)) for n in ("connector", "filter", "hub"))
        for s in spans
    }
    delivers = [s for s in observed.spans("hub") if s["name"] == "deliver"]
    assert len(delivers) == 3, "one deliver span per event the MASH wrote"
    for deliver in delivers:
        chain, traces = [], set()
        span: dict[str, Any] | None = deliver
        while span is not None:
            process, _ = by_id[span["context"]["span_id"]]
            chain.append((process, span["name"]))
            traces.add(span["context"]["trace_id"])
            parent = span["parent_id"]
            span = by_id[parent][1] if parent else None
        assert chain == [
            ("hub", "deliver"),
            ("filter", "decide"),
            ("connector", "publish"),
            ("connector", "map"),
        ]
        assert len(traces) == 1, "the four spans are one trace"
    services = {
        name: {s["resource"]["attributes"]["service.name"] for s in spans}
        for name, spans in ((n, observed.spans(n)) for n in ("connector", "filter", "hub"))
    }
    assert services == {"connector": {"sgb-connector"}, "filter": {"sgb-filter"}, "hub": {"sgb-hub"}}
    # Span attributes are ids and places, never a child's details.
    for spans in (observed.spans(n) for n in ("connector", "filter", "hub")):
        for s in spans:
            assert set(s["attributes"]) <= {
                "sgb.event_id",
                "messaging.system",
                "messaging.destination.name",
                "messaging.destination.partition.id",
                "messaging.kafka.offset",
            }


def test_a_log_line_inside_a_span_carries_its_trace_id(observed: Observed) -> None:
    traces = {s["context"]["trace_id"].removeprefix("0x") for s in observed.spans("connector")}
    lines = observed.log_lines("connector")
    dead = [line for line in lines if line.get("event") == "record dead-lettered"]
    assert len(dead) == 1 and dead[0]["trace_id"] in traces


# -- the registry's REST face -------------------------------------------------------------------
def test_confluent_avro_deserializer_decodes_a_delivery_topic(observed: Observed) -> None:
    url = observed.processes["registry"].url("")
    delivered = read_topic(observed.kafka, "sg.deliver.mash.202.v1", expect=3)
    assert len(delivered) == 3
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    ours = Codecs(registry_for(observed.kafka, read_only=True)).event
    topic = observed.kafka.topic("sg.deliver.mash.202.v1")
    for message in delivered:
        decoded = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        assert decoded == ours.decode(message.value())

    # The subject the delivery's schema is registered under, and its versions, as Confluent says them.
    schema_id = int.from_bytes(delivered[0].value()[1:5], "big")
    subjects = httpx.get(f"{url}/subjects", timeout=5).json()
    versions = httpx.get(f"{url}/schemas/ids/{schema_id}/versions", timeout=5).json()
    assert versions and versions[0]["subject"] in subjects
    latest = httpx.get(f"{url}/subjects/{versions[0]['subject']}/versions/latest", timeout=5).json()
    assert latest["id"] == schema_id
    # Read-only: a registration is refused; an unknown id is Confluent's 40403.
    refused = httpx.post(f"{url}/subjects/x/versions", json={"schema": '"string"'}, timeout=5)
    assert refused.status_code == 405
    missing = httpx.get(f"{url}/schemas/ids/1", timeout=5)
    assert missing.status_code == 404 and missing.json()["error_code"] == 40403
