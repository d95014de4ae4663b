"""Prometheus metrics for every sgb process: names ``sgb_*``, labels that carry no personal data.

Labels are vocabulary and organisation codes only (audience, outcome, reason, agency,
sink kind, component): never an event id, a child's key or anything from a payload, so a
scrape can be shared with whoever runs the monitoring. The helpers below are the API;
the metric objects are exported for the rare caller that needs them directly.

>>> server = start_metrics_server(9464)            # /metrics, plus /livez and /readyz with health=
>>> record_decision("SCHOOL_DSL", "SHARE", "granted")
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from confluent_kafka import KafkaException
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from broker.probes import Health, HealthServer, serve
from schemas.vocabulary import Agency, Audience, Outcome, Reason


def _version() -> str:
    try:
        return metadata.version("sgb")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


# -- every process --------------------------------------------------------------------------
BUILD_INFO = Gauge("sgb_build_info", "The running sgb build (always 1).", ["version", "python"])
BUILD_INFO.labels(_version(), platform.python_version()).set(1)

# -- the filter ---------------------------------------------------------------------------
DECISIONS = Counter(
    "sgb_filter_decisions_total",
    "Decisions made by the filter, one per event and audience.",
    ["audience", "outcome", "reason"],
)
FILTER_EVENTS = Counter("sgb_filter_events_total", "Ingress events the filter processed.", ["agency"])
# The filter's series without labels would be exported by every process that imports this
# module; they join the registry only when the filter starts (start_filter_series).
FILTER_BATCH_SECONDS = Histogram(
    "sgb_filter_batch_seconds",
    "Time to decide, deliver and commit one batch (one Kafka transaction).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)
FILTER_ABORTED = Counter(
    "sgb_filter_transactions_aborted_total", "Filter transactions aborted and retried.", registry=None
)
FILTER_LAG = Gauge(
    "sgb_filter_lag_messages",
    "Ingress messages the filter has not yet decided (offsets behind the end, commit markers included).",
    ["topic"],
)

# -- everyone that dead-letters -----------------------------------------------------------
DEAD_LETTERS = Counter("sgb_dead_letters_total", "Records sent to the dead-letter topic.", ["component"])

# -- connectors ---------------------------------------------------------------------------
CONNECTOR_RECORDS = Counter(
    "sgb_connector_records_total", "Source records a connector handled, by outcome.", ["agency", "outcome"]
)

# -- hubs ---------------------------------------------------------------------------------
HUB_WRITTEN = Counter(
    "sgb_hub_events_written_total",
    "Events a hub wrote to its sink (new ones only).",
    ["audience", "organisation", "sink"],
)
HUB_DUPLICATES = Counter(
    "sgb_hub_duplicates_skipped_total",
    "Events a hub's sink already held (re-read after a restart or a replay).",
    ["audience", "organisation", "sink"],
)
HUB_WRITE_SECONDS = Histogram(
    "sgb_hub_sink_write_seconds",
    "Time to make one batch durable in the sink.",
    ["sink"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HUB_FAILURES = Counter(
    "sgb_hub_sink_failures_total",
    "Sink writes that failed and will be retried.",
    ["audience", "organisation", "sink"],
)
HUB_LAG = Gauge(
    "sgb_hub_lag_messages",
    "Messages on the delivery topic not yet written to the sink.",
    ["audience", "organisation"],
)

# -- every component ----------------------------------------------------------------------
LAST_PROGRESS = Gauge(
    "sgb_last_progress_timestamp_seconds",
    "Unix time at which the component last completed a unit of work.",
    ["component"],
)


_filter_registered = False


def start_filter_series() -> None:
    """Export the filter's series, every known label at zero, so dashboards and rate() see a
    series from the first scrape instead of after the first event of each kind."""
    global _filter_registered
    if not _filter_registered:
        REGISTRY.register(FILTER_BATCH_SECONDS)
        REGISTRY.register(FILTER_ABORTED)
        _filter_registered = True
    for audience in Audience:
        DECISIONS.labels(audience.value, Outcome.SHARE.value, Reason.GRANTED.value)
        for reason in Reason:
            if reason is not Reason.GRANTED:
                DECISIONS.labels(audience.value, Outcome.WITHHOLD.value, reason.value)
    for agency in Agency:
        FILTER_EVENTS.labels(agency.value)
    DEAD_LETTERS.labels("filter")


def start_connector_series(agency: str, component: str) -> None:
    """A connector's series at zero for every outcome (``component`` as it dead-letters)."""
    for outcome in ("published", "dead_lettered", "skipped"):
        CONNECTOR_RECORDS.labels(agency, outcome)
    DEAD_LETTERS.labels(component)


def start_hub_series(audience: str, organisation: str, sink: str) -> None:
    """A hub's series at zero."""
    for counter in (HUB_WRITTEN, HUB_DUPLICATES, HUB_FAILURES):
        counter.labels(audience, organisation, sink)
    HUB_LAG.labels(audience, organisation)


def consumer_lag(cons: Any) -> dict[str, int] | None:
    """Per topic, offsets between a consumer's position and the end of its assigned partitions
    (from the watermarks its fetches last saw); None while they are unknown."""
    try:
        lag: dict[str, int] = {}
        for tp in cons.position(cons.assignment()):
            low, high = cons.get_watermark_offsets(tp, cached=True)
            if high < 0:
                return None
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - (tp.offset if tp.offset >= 0 else low))
        return lag
    except KafkaException:
        return None


def set_filter_lag(cons: Any) -> None:
    """Set ``sgb_filter_lag_messages`` per ingress topic from the filter's consumer."""
    for topic, lag in (consumer_lag(cons) or {}).items():
        FILTER_LAG.labels(topic).set(lag)


def record_decision(audience: str, outcome: str, reason: str | None) -> None:
    """Count one filter decision (``reason`` is ``granted`` or null for a share)."""
    DECISIONS.labels(audience, outcome, reason or "granted").inc()


def record_filter_batch(seconds: float, events_by_agency: dict[str, int] | None = None) -> None:
    """Record one committed filter batch: its duration and how many events of each agency it held."""
    FILTER_BATCH_SECONDS.observe(seconds)
    for agency, count in (events_by_agency or {}).items():
        FILTER_EVENTS.labels(agency).inc(count)
    progress("filter")


def record_aborted_transaction() -> None:
    """Count one aborted (and retried) filter transaction."""
    FILTER_ABORTED.inc()


def record_dead_letter(component: str, count: int = 1) -> None:
    """Count dead letters sent by ``component`` (``filter``, ``connector:police``, ...)."""
    DEAD_LETTERS.labels(component).inc(count)


def record_connector(agency: str, outcome: str, count: int = 1) -> None:
    """Count connector records by outcome: ``published``, ``dead_lettered`` or ``skipped``."""
    CONNECTOR_RECORDS.labels(agency, outcome).inc(count)
    progress(f"connector:{agency.lower()}")


def record_hub_write(
    audience: str, organisation: str, sink: str, *, written: int, duplicates: int, seconds: float
) -> None:
    """Record one durable hub batch: new events, events the sink already held, and how long it took."""
    HUB_WRITTEN.labels(audience, organisation, sink).inc(written)
    if duplicates:
        HUB_DUPLICATES.labels(audience, organisation, sink).inc(duplicates)
    HUB_WRITE_SECONDS.labels(sink).observe(seconds)
    progress(f"hub:{audience.lower()}:{organisation}")


def record_hub_failure(audience: str, organisation: str, sink: str) -> None:
    """Count a failed sink write (it is retried; nothing is acknowledged past it)."""
    HUB_FAILURES.labels(audience, organisation, sink).inc()


def set_hub_lag(audience: str, organisation: str, lag: int) -> None:
    """Set how many delivered messages the hub has not yet written."""
    HUB_LAG.labels(audience, organisation).set(lag)


def progress(component: str) -> None:
    """Record that ``component`` just completed a unit of work (for staleness alerts)."""
    LAST_PROGRESS.labels(component).set(time.time())


def start_metrics_server(port: int, health: Health | None = None, host: str = "127.0.0.1") -> HealthServer:
    """Serve ``/metrics`` on ``port`` (and ``/livez``, ``/readyz`` when ``health`` is given).

    Args:
        port: the port; 0 picks a free one (``.port`` on the result says which).
        health: the component's liveness and readiness, if it has any.
        host: the address to bind; loopback unless the scraper runs elsewhere.
    """
    return serve(port, health, metrics=True, host=host)


@contextlib.contextmanager
def serving(
    port: int | None, health: Health | None, host: str = "127.0.0.1"
) -> Iterator[HealthServer | None]:
    """``/metrics``, ``/livez`` and ``/readyz`` on ``host:port`` for the block (nothing when
    ``port`` is None), closed on the way out."""
    server = start_metrics_server(port, health, host) if port is not None else None
    try:
        yield server
    finally:
        if server is not None:
            server.close()


__all__ = [
    "consumer_lag",
    "progress",
    "record_aborted_transaction",
    "record_connector",
    "record_dead_letter",
    "record_decision",
    "record_filter_batch",
    "record_hub_failure",
    "record_hub_write",
    "serving",
    "set_filter_lag",
    "set_hub_lag",
    "start_connector_series",
    "start_filter_series",
    "start_hub_series",
    "start_metrics_server",
]
