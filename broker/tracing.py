"""Distributed tracing with OpenTelemetry, off by default; ``SGB_TRACING`` turns it on.

* ``off`` (the default): nothing is recorded, no header is added, no log line changes.
* ``otlp``: spans go to an OpenTelemetry collector over OTLP/HTTP (the standard
  ``OTEL_EXPORTER_OTLP_*`` variables say where); needs ``pip install 'sgb[otlp]'``.
* ``file:PATH``: spans are appended to PATH as JSON lines (debugging, tests).

When on, the W3C trace context travels in Kafka headers (``traceparent``, ``tracestate``)
from the connector that maps a record (or the webhook's incoming ``traceparent``) through
the filter's decision to the hub's write, so one trace spans the three processes: spans
``map`` and ``publish`` in the connector, ``decide`` in the filter, ``deliver`` in the hub.
Span attributes are ids and counts only (event id, topic, audience): never anything from a
payload. Log lines written inside a span carry its ``trace_id``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace

#: The Kafka headers the trace context travels in (W3C Trace Context).
TRACE_HEADERS = ("traceparent", "tracestate")

#: Span attributes: ids and counts only.
Attributes = dict[str, str | int]

_tracer: trace.Tracer | None = None


def enabled() -> bool:
    """Whether this process records spans and propagates trace context."""
    return _tracer is not None


def configure_tracing(setting: str, service: str) -> None:
    """Turn tracing on for this process (once) as ``setting`` says: ``off``, ``otlp`` or ``file:PATH``.

    Args:
        setting: the value of ``SGB_TRACING``.
        service: this process's ``service.name`` (``OTEL_SERVICE_NAME`` wins when set).
    """
    global _tracer
    if setting == "off" or _tracer is not None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if setting == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            msg = "SGB_TRACING=otlp needs the OTLP exporter: pip install 'sgb[otlp]'."
            raise ImportError(msg) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        exporter = cast(SpanExporter, JsonLinesExporter(Path(setting.removeprefix("file:"))))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("sgb")


class JsonLinesExporter:
    """Appends each finished span to a file as one JSON line (the SDK's own JSON form).

    Args:
        path: the file; its folder is created if missing.
    """

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        with self.path.open("a", encoding="utf-8") as out:
            for span in spans:
                out.write(span.to_json(indent=None) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _header_map(headers: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers or ():
        if name in TRACE_HEADERS and value is not None:
            found[name] = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return found


def context_from(carrier: Mapping[str, str] | Sequence[tuple[str, Any]] | None) -> Any:
    """The trace context in Kafka headers (a list of pairs) or HTTP headers (a mapping);
    None when tracing is off or the carrier holds none."""
    if _tracer is None or not carrier:
        return None
    if isinstance(carrier, Mapping):
        found = {name: carrier[name] for name in TRACE_HEADERS if name in carrier}
    else:
        found = _header_map(carrier)
    if not found:
        return None
    from opentelemetry.propagate import extract

    return extract(found)


def trace_headers() -> list[tuple[str, str | bytes | None]]:
    """The current span's context as Kafka headers (none when tracing is off)."""
    if _tracer is None:
        return []
    from opentelemetry.propagate import inject

    carrier: MutableMapping[str, str] = {}
    inject(carrier)
    return list(carrier.items())


#: What :func:`span` and :func:`consumed` return when tracing is off (reusable, costs nothing).
_OFF: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()


def span(
    name: str, parent: Any = None, attributes: Attributes | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name`` (child of ``parent``, a context from :func:`context_from`, else of
    the current span), current inside the block; nothing at all when tracing is off.

    Args:
        name: ``map``, ``publish``, ``decide`` or ``deliver``.
        parent: the remote parent context, if any.
        attributes: ids and counts only (topic, partition, offset, event id).
    """
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, context=parent, attributes=attributes)


def consumed(name: str, msg: Any) -> contextlib.AbstractContextManager[Any]:
    """A span for handling one consumed Kafka message, child of the trace context its headers carry."""
    if _tracer is None:
        return _OFF
    return span(name, context_from(msg.headers()), _where(msg))


def _where(msg: Any) -> Attributes:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": str(msg.topic()),
        "messaging.destination.partition.id": str(msg.partition()),
        "messaging.kafka.offset": int(msg.offset() or 0),
    }


@contextlib.contextmanager
def each_consumed(name: str, messages: Sequence[Any]) -> Iterator[None]:
    """One span per consumed message around a block that handles them together (a hub's sink
    write of a batch): each is a child of its own message's trace context and ends with the block."""
    if _tracer is None or not messages:
        yield
        return
    tracer = _tracer
    spans = [tracer.start_span(name, context_from(m.headers()), attributes=_where(m)) for m in messages]
    try:
        yield
    except BaseException as exc:
        for one in spans:
            one.record_exception(exc)
            one.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for one in spans:
            one.end()


@contextlib.contextmanager
def attached(parent: Any) -> Iterator[None]:
    """Make ``parent`` (from :func:`context_from`) the current context inside the block."""
    if parent is None:
        yield
        return
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


def add_trace_id(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the current span's ``trace_id`` on every line written inside one."""
    if _tracer is not None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
    return event_dict
