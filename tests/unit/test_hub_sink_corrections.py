"""Hub sinks apply corrections (principle 10): an amendment replaces the stored copy, a
retraction marks it withdrawn, an erasure leaves only the event id and the fact of erasure."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from test_hub_sink_writes import delivered

from broker.hub.delivered import HubEvent
from broker.hub.sinks.jsonl import JsonlSink
from broker.hub.sinks.sqlite import SqliteSink
from broker.hub.sinks.webhook import WebhookSink
from sgb.inbox.store import InboxStore
from sgb.inbox.view import build

SECRETS = ("Testy", "Childe", "Synthetic Row", "SECRET-AMENDED")


def correcting(original: HubEvent, kind: str, **record: object) -> HubEvent:
    """A delivered correction of ``original`` (``record`` overrides fields of its copy)."""
    event_id = str(uuid.uuid4())
    copy = {**original.record, **record, "event_id": event_id}
    copy["correction"] = {"kind": kind, "corrects_event_id": original.event_id}
    return dataclasses.replace(original, event_id=event_id, record=copy)


def test_sqlite_amends_withdraws_and_erases_the_original_row(tmp_path: Path) -> None:
    a, b = delivered(audience="MASH"), delivered(audience="MASH")
    path = tmp_path / "inbox.db"
    sink = SqliteSink(path, "MASH", "202")
    amended = correcting(a, "AMENDED", narrative="SECRET-AMENDED narrative")
    assert sink.write([a, b, amended]) == 3
    assert sink.write([amended]) == 0  # the same correction twice changes nothing
    retracted, erased = correcting(b, "RETRACTED"), correcting(a, "ERASED")
    assert sink.write([retracted, erased]) == 2
    assert sink.write([correcting(a, "AMENDED")]) == 0  # erased stays erased
    sink.close()
    with sqlite3.connect(path) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute("SELECT event_id, correction, corrected_by, event FROM deliveries")
        }
    assert set(rows) == {a.event_id, b.event_id}  # corrections update rows; they add none
    assert rows[b.event_id][:2] == ("RETRACTED", retracted.event_id)
    kind, by, stored = rows[a.event_id]
    assert (kind, by) == ("ERASED", erased.event_id)
    assert json.loads(stored)["event_id"] == a.event_id
    assert not any(secret in stored for secret in SECRETS)


def test_sqlite_amendment_replaces_the_stored_copy(tmp_path: Path) -> None:
    a = delivered(audience="MASH")
    sink = SqliteSink(tmp_path / "inbox.db", "MASH", "202")
    sink.write([a])
    sink.write([correcting(a, "AMENDED", narrative="SECRET-AMENDED narrative")])
    sink.close()
    with sqlite3.connect(tmp_path / "inbox.db") as conn:
        (stored, kind) = conn.execute("SELECT event, correction FROM deliveries").fetchone()
    assert kind == "AMENDED" and json.loads(stored)["narrative"] == "SECRET-AMENDED narrative"


def test_jsonl_appends_corrections_and_an_erasure_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "inbox.jsonl"
    a, b = delivered(audience="MASH"), delivered(audience="MASH")
    sink = JsonlSink(path)
    amended = correcting(a, "AMENDED", narrative="SECRET-AMENDED narrative")
    assert sink.write([a, b, amended]) == 3
    kinds = [json.loads(line).get("correction") for line in path.read_text().splitlines()]
    assert kinds[:2] == [None, None] and kinds[2]["kind"] == "AMENDED"
    assert sink.write([correcting(a, "ERASED")]) == 1
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 4
    mentions_a = [line for line in lines if a.event_id in json.dumps(line)]
    assert len(mentions_a) == 3
    assert not any(secret in json.dumps(mentions_a) for secret in SECRETS)
    assert "Testy" in json.dumps(lines[1])  # the other event is untouched
    sink = JsonlSink(path)  # reopened: the ids are still known, nothing is written twice
    assert sink.write([a, amended]) == 0
    sink.close()


def test_jsonl_erasure_in_the_same_batch_as_its_original(tmp_path: Path) -> None:
    path = tmp_path / "inbox.jsonl"
    a = delivered(audience="MASH")
    sink = JsonlSink(path)
    assert sink.write([a, correcting(a, "ERASED")]) == 2
    sink.close()
    assert not any(secret in path.read_text() for secret in SECRETS)


def test_the_inbox_shows_what_the_source_did(tmp_path: Path) -> None:
    a, b, c = (delivered(audience="MASH") for _ in range(3))
    sink = SqliteSink(tmp_path / "inbox.db", "MASH", "202")
    sink.write([a, b, c])
    sink.write([correcting(a, "AMENDED"), correcting(b, "RETRACTED"), correcting(c, "ERASED")])
    sink.close()
    store = InboxStore(tmp_path / "inbox.db")
    shown = {d.event_id: build(d.event, d.withheld_fields) for d in store.recent()}
    assert (shown[a.event_id].correction or "").startswith("Amended by source")
    assert (shown[b.event_id].correction or "").startswith("Withdrawn by source:")
    erased = shown[c.event_id]
    assert (erased.correction or "").endswith("its content has been removed.")
    assert erased.child_name == "Name not recorded" and not erased.what and erased.narrative is None


def test_the_webhook_sends_a_correction_with_what_it_corrects() -> None:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(dict(self.headers))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        a = delivered(audience="MASH")
        retracted = correcting(a, "RETRACTED")
        sink = WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/hook")
        assert sink.write([a, retracted]) == 2
        sink.close()
    finally:
        server.shutdown()
        server.server_close()
    assert "Sgb-Correction" not in seen[0]
    assert seen[1]["Idempotency-Key"] == retracted.event_id
    assert (seen[1]["Sgb-Correction"], seen[1]["Sgb-Corrects-Event-Id"]) == ("RETRACTED", a.event_id)


def test_the_python_api_says_what_a_delivery_corrects() -> None:
    a = delivered(audience="MASH")
    assert a.correction is None
    assert correcting(a, "ERASED").correction == ("ERASED", a.event_id)
