"""Tracing (broker/tracing.py): off by default and then nothing at all; on, a span's context
travels in Kafka headers to the next process's span, and a garbled traceparent starts a new
trace instead of failing the request."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker import tracing


class Consumed:
    """What a consumer hands over: headers and a place."""

    def __init__(self, headers: list[tuple[str, Any]]) -> None:
        self._headers = headers

    def headers(self) -> list[tuple[str, Any]]:
        return self._headers

    def topic(self) -> str:
        return "sg.ingress.police.v1"

    def partition(self) -> int:
        return 3

    def offset(self) -> int:
        return 42


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


def test_off_by_default_adds_no_header_and_records_nothing() -> None:
    assert not tracing.enabled()
    with tracing.span("publish") as current:
        assert current is None
        assert tracing.trace_headers() == []
    assert tracing.context_from([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]) is None


def test_a_spans_context_reaches_the_next_process_through_kafka_headers(spans: InMemorySpanExporter) -> None:
    with tracing.span("publish", None, {"sgb.event_id": "e-1"}):
        headers = [(name, value.encode()) for name, value in tracing.trace_headers()]
    assert [name for name, _ in headers] == ["traceparent"]
    with tracing.consumed("decide", Consumed(headers)):
        pass
    with tracing.each_consumed("deliver", [Consumed(headers)]):
        pass
    publish, decide, deliver = spans.get_finished_spans()
    assert decide.parent is not None and decide.parent.span_id == publish.context.span_id
    assert deliver.parent is not None and deliver.parent.span_id == publish.context.span_id
    assert publish.context.trace_id == decide.context.trace_id == deliver.context.trace_id
    assert dict(decide.attributes or {})["messaging.kafka.offset"] == 42


def test_a_garbled_traceparent_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    with tracing.span("map", tracing.context_from({"traceparent": "not-a-trace"})):
        pass
    (only,) = spans.get_finished_spans()
    assert only.parent is None
