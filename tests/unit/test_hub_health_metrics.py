"""Liveness, readiness and metrics endpoints, and the operator tables, without Kafka."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

from broker import metrics
from broker.probes import Health, start_health_server
from sgb.cli.status import render, table
from sgb.ops.dlq_replay import matches as _matches
from sgb.ops.status import DeadLetterCount, DeadLetterView, GroupLag, MinuteDecisions, Status, TopicEnds


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_liveness_goes_stale_and_readiness_needs_every_check() -> None:
    now = [100.0]
    health = Health("filter", stale_after=30, clock=lambda: now[0])
    assigned = [False]
    health.add_check("assigned", lambda: assigned[0])
    health.add_check("broken", lambda: 1 / 0 > 0)
    assert health.live()[0]
    ok, body = health.ready()
    assert not ok and body["checks"] == {"assigned": False, "broken": False}
    now[0] += 31
    assert not health.live()[0]
    health.beat()
    assert health.live()[0]


def test_http_endpoints_answer_with_status_codes_and_metrics() -> None:
    health = Health("hub")
    ready = [False]
    health.add_check("sink", lambda: ready[0])
    metrics.record_hub_write("MASH", "202", "sqlite", written=3, duplicates=1, seconds=0.01)
    metrics.record_decision("SCHOOL_DSL", "SHARE", None)
    metrics.record_dead_letter("filter")
    server = start_health_server(0, health)
    try:
        assert _get(server.port, "/livez")[0] == 200
        status, body = _get(server.port, "/readyz")
        assert status == 503 and json.loads(body)["checks"] == {"sink": False}
        ready[0] = True
        assert _get(server.port, "/readyz")[0] == 200
        status, text = _get(server.port, "/metrics")
        assert status == 200
        assert 'sgb_hub_duplicates_skipped_total{audience="MASH",organisation="202",sink="sqlite"}' in text
        assert 'sgb_filter_decisions_total{audience="SCHOOL_DSL",outcome="SHARE",reason="granted"}' in text
        assert 'sgb_dead_letters_total{component="filter"}' in text
        assert _get(server.port, "/nothing")[0] == 404
    finally:
        server.close()


def test_every_metric_is_named_sgb() -> None:
    from prometheus_client import REGISTRY

    metrics.start_filter_series()  # the filter's own series join the registry when it starts
    ours = [m.name for m in REGISTRY.collect() if m.name.startswith("sgb")]
    assert {
        "sgb_filter_decisions",
        "sgb_hub_events_written",
        "sgb_hub_lag_messages",
        "sgb_filter_batch_seconds",
        "sgb_dead_letters",
        "sgb_connector_records",
    } <= set(ours)


def test_tables_align_numbers_right() -> None:
    lines = table(("topic", "lag"), [("sg.deliver.mash.202.v1", 5), ("sg.ingress.police.v1", 120)])
    assert lines[2].endswith("  5") and lines[3].endswith("120")


def test_status_renders_every_section() -> None:
    status = Status(
        generated_at="2026-11-23T08:00:00Z",
        topics=[TopicEnds("sg.ingress.police.v1", 6, 40, 40), TopicEnds("sg.ingress.health.v1", 6, 0, 0)],
        lags=[
            GroupLag("filter", "sgb-filter", "sg.ingress.police.v1", 0, True),
            GroupLag("hub", "sgb-hub-mash-202", "sg.deliver.mash.202.v1", 25000, False),
        ],
        unread={"sg.deliver.gp.F83004.v1": 3},
        dead_letters=[DeadLetterCount("filter", "Event identifies no child.", 2, "2026-11-23T07:59:00Z")],
        decisions=[MinuteDecisions("2026-11-23T07:59:00Z", 4, 9)],
        minutes=1,
    )
    text = render(status)
    assert "1 empty topic(s) not shown." in text
    assert "~25000" in text and "sg.deliver.gp.F83004.v1" in text
    assert "Event identifies no child." in text and "(4 shared, 9 withheld)" in text


def test_dead_letter_origin_and_reason_filter() -> None:
    letter = DeadLetterView(
        0,
        7,
        datetime(2026, 11, 23, tzinfo=UTC),
        "filter",
        "Event identifies no child.",
        "sg.ingress.police.v1",
        2,
        15,
        None,
        None,
    )
    assert letter.origin == "sg.ingress.police.v1[2]@15"
    from_file = DeadLetterView(
        0,
        8,
        datetime(2026, 11, 23, tzinfo=UTC),
        "connector:police",
        "Bad row.",
        None,
        None,
        None,
        "drop.csv",
        "line 4",
    )
    assert from_file.origin == "drop.csv line 4"
    assert _matches("Event identifies no child.", "NO CHILD") and not _matches("Bad row.", "child")
    assert _matches("anything", None)


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    import re
    from pathlib import Path

    from prometheus_client import REGISTRY

    dashboard = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "sgb-dashboard.json"
    exprs = [t["expr"] for p in json.loads(dashboard.read_text())["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bsgb_[a-z0-9_]+", expr)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    metrics.start_filter_series()  # the dashboard's filter panels scrape a running filter
    exposed = {m.name + s for m in REGISTRY.collect() for s in suffixes.get(m.type, ("",))}
    assert used and used <= exposed, used - exposed
