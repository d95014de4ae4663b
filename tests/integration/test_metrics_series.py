"""What an operator's Prometheus sees: a build-info series, every known label at zero from the
first scrape, only the series of the process it scrapes, and the filter's lag."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from prometheus_client import REGISTRY, generate_latest

from broker import metrics
from broker.settings import Settings
from connectors.runtime.publisher import EventPublisher
from tests.conftest import RunningFilter, read_topic
from tests.factories import domestic_abuse_incident


def _scrape_fresh_process(code: str) -> str:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}; from prometheus_client import generate_latest; print(generate_latest().decode())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_a_process_exports_build_info_and_not_the_filters_series() -> None:
    scraped = _scrape_fresh_process("import broker.metrics")
    assert 'sgb_build_info{python="' in scraped and 'version="' in scraped
    assert "sgb_filter_batch_seconds" not in scraped
    assert "sgb_filter_transactions_aborted_total" not in scraped


def test_the_filters_known_labels_start_at_zero() -> None:
    scraped = _scrape_fresh_process("import broker.metrics as m; m.start_filter_series()")
    assert (
        'sgb_filter_decisions_total{audience="SCHOOL_DSL",outcome="WITHHOLD",reason="no_rule"} 0.0' in scraped
    )
    assert 'sgb_filter_decisions_total{audience="MASH",outcome="SHARE",reason="granted"} 0.0' in scraped
    assert 'sgb_filter_events_total{agency="POLICE"} 0.0' in scraped
    assert 'sgb_dead_letters_total{component="filter"} 0.0' in scraped
    assert "sgb_filter_transactions_aborted_total 0.0" in scraped
    assert "sgb_filter_batch_seconds_count 0.0" in scraped


def test_a_hubs_known_labels_start_at_zero() -> None:
    scraped = _scrape_fresh_process("import broker.metrics as m; m.start_hub_series('MASH', '202', 'jsonl')")
    assert 'sgb_hub_events_written_total{audience="MASH",organisation="202",sink="jsonl"} 0.0' in scraped
    assert 'sgb_hub_sink_failures_total{audience="MASH",organisation="202",sink="jsonl"} 0.0' in scraped
    assert 'sgb_hub_lag_messages{audience="MASH",organisation="202"} 0.0' in scraped


@pytest.mark.kafka
def test_the_filter_reports_its_lag(kafka: Settings, group_id: str) -> None:
    publisher = EventPublisher(kafka, "POLICE")
    for _ in range(5):
        publisher.publish(domestic_abuse_incident())
    publisher.flush()
    topic = kafka.topic("sg.ingress.police.v1")
    with RunningFilter(kafka, group_id=group_id, instance="test"):
        read_topic(kafka, "sg.audit.decisions.v1", expect=5)  # one audit record per event
        deadline = time.monotonic() + 30
        while REGISTRY.get_sample_value("sgb_filter_lag_messages", {"topic": topic}) is None:
            assert time.monotonic() < deadline, "no sgb_filter_lag_messages for the ingress topic"
            time.sleep(0.2)
    assert f'sgb_filter_lag_messages{{topic="{topic}"}}' in generate_latest().decode()
    assert metrics.FILTER_LAG.labels(topic)._value.get() >= 0
