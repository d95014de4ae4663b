"""Hub sinks without Kafka: idempotent by event id, durable, and honest about partial failure."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from factories import domestic_abuse_incident

import schemas
from broker.hub.delivered import HubEvent
from broker.hub.sinks import SinkError, SinkUnavailable, open_sink
from broker.hub.sinks.jsonl import JsonlSink
from broker.hub.sinks.sqlite import SqliteSink
from broker.hub.sinks.webhook import WebhookSink
from consent.engine import Engine
from consent.policy import BASELINE, load
from consent.state import ChildState


def delivered(audience: str = "SCHOOL_DSL", **changes: Any) -> HubEvent:
    """A copy exactly as the engine redacts it for ``audience``, wrapped as a hub receives it."""
    event = domestic_abuse_incident(**changes)
    engine = Engine(load(BASELINE), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: True)
    decision = next(d for d in engine.decide(event, ChildState()) if d.audience.value == audience)
    copy = decision.event
    assert copy is not None
    child, source = copy["child"], copy["source"]
    return HubEvent(
        event_id=copy["event_id"],
        event_type=copy["event_type"],
        risk=copy["risk"],
        occurred_at=copy["occurred_at"],
        recorded_at=copy["recorded_at"],
        agency=source["agency"],
        source_organisation=source["organisation"],
        source_organisation_name=source["organisation_name"],
        given_name=child["given_name"],
        family_name=child["family_name"],
        date_of_birth=child["date_of_birth"],
        nhs_number=child["nhs_number"],
        details=copy["details"],
        narrative=copy["narrative"],
        withheld_fields=tuple(copy["withheld_fields"]),
        generalised_fields=copy["generalised_fields"],
        audience=audience,
        organisation=decision.organisation or "",
        policy_version="test",
        topic="t",
        partition=0,
        offset=1,
        delivered_at=datetime(2026, 11, 23, 8, tzinfo=UTC),
        record=copy,
    )


def test_hub_event_reads_like_a_hub_reads_it() -> None:
    event = delivered()
    assert event.child_name == "Testy Childe"
    assert event.withheld("narrative") and event.withheld("child.address.postcode")
    assert not event.withheld("child.given_name")
    assert event.to_json()["occurred_at"] == "2026-11-20T21:30:00Z"


def test_jsonl_is_idempotent_owner_only_and_cuts_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "hub" / "inbox.jsonl"
    a, b = delivered(), delivered()
    sink = JsonlSink(path)
    assert sink.write([a, a, b]) == 2
    assert sink.write([a]) == 0
    sink.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with path.open("a") as fh:
        fh.write('{"event_id": "torn-by-a-cra')  # a crash mid-line
    c = delivered()
    sink = JsonlSink(path)
    assert sink.write([b, c]) == 1
    sink.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == [a.event_id, b.event_id, c.event_id]


def test_sqlite_is_idempotent_in_one_transaction_per_batch(tmp_path: Path) -> None:
    a, b = delivered(), delivered()
    sink = SqliteSink(tmp_path / "inbox.db", "SCHOOL_DSL", "100000")
    assert sink.write([a, b, a]) == 2
    assert sink.write([b]) == 0
    sink.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "inbox.db") as conn:
        rows = conn.execute(
            "SELECT event_id, withheld_fields, event FROM deliveries ORDER BY event_id"
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted([a.event_id, b.event_id])
    assert "narrative" in json.loads(rows[0][1])
    assert json.loads(rows[0][2])["child"]["given_name"] == "Testy"


def test_open_sink_says_what_is_wrong_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="must be KIND:TARGET"):
        open_sink("inbox.jsonl", "MASH", "202")
    with pytest.raises(SinkError, match="not supported; use one of jsonl, sqlite, postgres, webhook"):
        open_sink("kafka:elsewhere", "MASH", "202")
    with pytest.raises(SinkError, match="http:// or https://"):
        open_sink("webhook:ftp://example.org/x", "MASH", "202")
    with pytest.raises(SinkError) as found:
        open_sink("postgres:postgresql://hub:s3cret-pw@127.0.0.1:1/nodb", "MASH", "202")
    assert "s3cret-pw" not in str(found.value) and str(found.value).endswith(".")


class _Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.keys = statuses, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.keys.append(self.headers["Idempotency-Key"])
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    found = _Receiver([])
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_webhook_posts_each_event_with_its_idempotency_key_and_retries(receiver: _Receiver) -> None:
    waits: list[float] = []
    receiver.statuses[:] = [503, 500, 204]
    a, b = delivered(), delivered()
    sink = WebhookSink(receiver.url, attempts=4, backoff=0.1, sleep=waits.append)
    assert sink.write([a, b]) == 2
    assert receiver.keys == [a.event_id, a.event_id, a.event_id, b.event_id]
    assert waits == [0.1, 0.2]


def test_webhook_reports_the_accepted_prefix_and_hides_the_query(receiver: _Receiver) -> None:
    receiver.statuses[:] = [200, 302, 302, 302]  # a redirect is not success
    a, b, c = delivered(), delivered(), delivered()
    sink = WebhookSink(receiver.url, attempts=3, sleep=lambda s: None)
    with pytest.raises(SinkUnavailable) as failed:
        sink.write([a, b, c])
    assert failed.value.written == 1
    assert "secret" not in str(failed.value) and "HTTP 302" in str(failed.value)
    assert receiver.keys == [a.event_id, b.event_id, b.event_id, b.event_id]
