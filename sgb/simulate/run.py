"""Running ``sgb simulate``: rate limiting and where the records go (progress: :mod:`sgb.simulate.progress`).

Events go to their agency's ingress topic through one :class:`EventPublisher` per agency, or
to a JSON-lines file in the shape ``sgb policy evaluate --event`` reads (one event per line).
Consent records go to ``sg.consent.v1`` keyed by the child, or to a second file beside the
events file. Logs carry counts and rates only, never a child's details.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from confluent_kafka import KafkaError, KafkaException, Message

from broker.exceptions import DeliveryError, KafkaUnavailable, SgbError
from broker.logs import get_logger
from broker.settings import Settings
from schemas.child_keys import consent_key
from schemas.jsonform import to_json
from schemas.topics import CONSENT_TOPIC, ingress_topic
from sgb.simulate.events import EVENT_AGENCY, EVENT_TYPES, Population, SimulationError, Simulator
from sgb.simulate.progress import Progress, progress_for

log = get_logger("simulate")

MEAN_GAP = timedelta(minutes=7)


class TokenBucket:
    """At most ``rate`` records a second on average, with bursts of up to ``burst``.

    Args:
        rate: records per second; ``None`` means no limit.
        burst: how many may go at once after a pause (default: a tenth of a second's worth, at least 1).
        clock: a monotonic clock, in seconds.
        sleep: how to wait.
    """

    def __init__(
        self,
        rate: float | None,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and (isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0):
            msg = "The rate must be a positive number of events per second."
            raise SimulationError(msg)
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, (rate or 0) / 10)
        if self.capacity < 1:
            msg = "The burst must allow at least one record."
            raise SimulationError(msg)
        self._tokens = 1.0
        self._clock, self._sleep = clock, sleep
        self._last = clock()

    def reset(self) -> None:
        """Start again with one token, as if just made (after a slow start-up, say)."""
        self._tokens = 1.0
        self._last = self._clock()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens, waiting if there are not enough; returns the seconds waited."""
        if self.rate is None:
            return 0.0
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate) - n
        self._last = now
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.rate
        self._sleep(wait)
        return wait


# --------------------------------------------------------------------------------------- sinks


class JsonlSink:
    """Events to ``path``, one JSON object a line; consent records to ``<stem>.consents<suffix>``."""

    def __init__(self, path: Path, with_consents: bool) -> None:
        if path.is_dir():
            msg = f"--output {path} is a directory; give a file name such as events.jsonl."
            raise SgbError(msg)
        if not path.parent.is_dir():
            msg = f"The directory for --output, {path.parent}, does not exist."
            raise SgbError(msg)
        self.destination = str(path)
        consents = path.with_name(f"{path.stem}.consents{path.suffix or '.jsonl'}")
        self.consent_path = consents if with_consents else None
        self._events = self._open(path)
        self._consents = self._open(self.consent_path) if self.consent_path else None

    @staticmethod
    def _open(path: Path) -> IO[str]:
        try:
            return path.open("w", encoding="utf-8")
        except OSError as exc:
            msg = f"Cannot write {path}: {exc.strerror or type(exc).__name__}."
            raise SgbError(msg) from None

    def event(self, event: dict[str, Any]) -> None:
        self._events.write(json.dumps(to_json(event), ensure_ascii=False) + "\n")

    def consent(self, record: dict[str, Any]) -> None:
        assert self._consents is not None
        self._consents.write(json.dumps(to_json(record), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._events.close()
        if self._consents:
            self._consents.close()

    abort = close


class KafkaSink:
    """Events to their agency's ingress topic, consent records to ``sg.consent.v1``, both keyed by child."""

    def __init__(self, settings: Settings, agencies: Iterable[str], with_consents: bool) -> None:
        from broker.clients import producer
        from broker.wire.codecs import Codecs
        from broker.wire.registry import registry_for
        from connectors.runtime.publisher import EventPublisher

        agencies = sorted(set(agencies))
        topics = [settings.topic(ingress_topic(a)) for a in agencies]
        if with_consents:
            topics.append(settings.topic(CONSENT_TOPIC))
        _require_topics(settings, topics)
        self.destination = "Kafka"
        self.failures: list[str] = []
        self.acknowledged = 0
        self.publishers = {agency: EventPublisher(settings, agency) for agency in agencies}
        self._consent_topic = settings.topic(CONSENT_TOPIC)
        self._codecs = Codecs(registry_for(settings)) if with_consents else None
        self._producer = producer(settings) if with_consents else None
        # Register the schemas now, so that registration does not hold up the first records.
        for publisher in self.publishers.values():
            _ = publisher.codecs.event.schema_id
        if self._codecs is not None:
            _ = self._codecs.consent.schema_id

    def _acknowledged(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.acknowledged += 1
        else:
            self.failures.append(error.str())

    def event(self, event: dict[str, Any]) -> None:
        self.publishers[event["source"]["agency"]].publish(event, self._acknowledged)

    def consent(self, record: dict[str, Any]) -> None:
        assert self._codecs is not None and self._producer is not None
        key = consent_key(record)
        value = self._codecs.consent.encode(record)
        while True:
            try:
                self._producer.produce(
                    self._consent_topic, key=str(key).encode(), value=value, on_delivery=self._acknowledged
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def close(self, timeout: float = 30.0) -> None:
        from broker.clients import flush_or_raise

        if self._producer is not None:
            flush_or_raise(self._producer, timeout, f"publishing to {self._consent_topic}")
        for publisher in self.publishers.values():
            publisher.flush(timeout)
        if self.failures:
            msg = f"Kafka refused {len(self.failures)} record(s), the first with: {self.failures[0]}."
            raise DeliveryError(msg)

    def abort(self) -> None:
        for prod in [self._producer, *(p.producer for p in self.publishers.values())]:
            if prod is not None:
                prod.flush(5)


def _require_topics(settings: Settings, topics: Sequence[str], timeout: float = 10.0) -> None:
    from broker.clients import admin_client

    try:
        existing = admin_client(settings).list_topics(timeout=timeout).topics
    except KafkaException:
        msg = (
            f"Kafka at {settings.bootstrap} did not answer within {timeout:.0f} s; "
            "start it with `sgb kafka start` or set SGB_BOOTSTRAP_SERVERS."
        )
        raise KafkaUnavailable(msg) from None
    missing = [t for t in topics if t not in existing]
    if missing:
        msg = f"Topic {missing[0]} does not exist; create the topics with `sgb topics apply`."
        raise SgbError(msg)


# ----------------------------------------------------------------------------------------- run


@dataclass
class SimulationReport:
    """What a run produced."""

    seed: int | str
    children: int
    destination: str
    events: int = 0
    consents: int = 0
    elapsed_s: float = 0.0
    consent_destination: str | None = None
    by_type: Counter[str] = field(default_factory=Counter)
    by_agency: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        total = self.events + self.consents
        return total / self.elapsed_s if self.elapsed_s > 0 else float(total)

    def line(self) -> str:
        """The one-line summary the command prints."""
        types = ", ".join(f"{t} {self.by_type[t]}" for t in EVENT_TYPES if self.by_type[t])
        agencies = ", ".join(f"{a} {n}" for a, n in sorted(self.by_agency.items()))
        consents = (
            f"; {self.consents} consent record(s) to {self.consent_destination}" if self.consents else ""
        )
        return (
            f"Simulated {self.events} event(s) about {self.children} children (seed {self.seed}) "
            f"to {self.destination} in {self.elapsed_s:.1f} s at {self.rate:.1f} records/s; "
            f"by type: {types or 'none'}; by agency: {agencies or 'none'}{consents}."
        )


def default_start(count: int, now: datetime | None = None) -> datetime:
    """A start for the simulated period such that it ends about now (a day to spare for late recording)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    return now - MEAN_GAP * count - timedelta(days=1)


def run_simulation(
    settings: Settings | None,
    *,
    count: int,
    children: int,
    seed: int | str | None = None,
    types: Sequence[str] | None = None,
    mix: Mapping[str, float] | None = None,
    rate: float | None = None,
    consents: int = 0,
    output: Path | None = None,
    start: datetime | None = None,
    progress: Progress | None = None,
    population: Mapping[str, Any] | None = None,
) -> SimulationReport:
    """Simulate and deliver; returns the report. Raises :class:`SgbError` with one sentence.

    Args:
        settings: how to reach Kafka (not needed with ``output``).
        count: how many events.
        children: the population's size.
        seed: repeat a run (default: a random seed, reported).
        types: only these event types.
        mix: relative weights by event type.
        rate: records a second at most (default: no limit).
        consents: how many consent records, sent before the events.
        output: write JSON lines here instead of publishing to Kafka.
        start: when the simulated period starts (default: so that it ends about now).
        progress: where progress goes (default: a bar on a terminal, log lines otherwise).
        population: further keyword arguments for :class:`Population` (la_codes, schools, ...).
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if count == 0 and consents == 0:
        msg = "Nothing to simulate: the number of events and of consent records are both 0."
        raise SimulationError(msg)
    bucket = TokenBucket(rate)
    start = start or default_start(count)
    pop = Population(children, seed, **{"today": start.date(), **(population or {})})
    simulator = Simulator(pop, seed, start=start, mean_gap=MEAN_GAP)
    weights = simulator.weights(types, mix)
    events = simulator.events(count, list(weights), mix) if count else iter(())
    records = simulator.consent_records(consents)
    agencies = {EVENT_AGENCY[t] for t in weights} if count else set()
    sink: JsonlSink | KafkaSink
    if output is not None:
        sink = JsonlSink(output, consents > 0)
        consent_destination = str(sink.consent_path)
    else:
        if settings is None:
            msg = "Publishing to Kafka needs settings; give --output to write a file instead."
            raise SgbError(msg)
        sink = KafkaSink(settings, agencies, consents > 0)
        consent_destination = CONSENT_TOPIC
    report = SimulationReport(
        seed=seed, children=children, destination=sink.destination, consent_destination=consent_destination
    )
    progress = progress or progress_for(count + consents, "Publishing" if output is None else "Writing")
    bucket.reset()
    began = time.monotonic()
    try:
        for record in records:
            bucket.take()
            sink.consent(record)
            report.consents += 1
            progress.advance()
        for event in events:
            bucket.take()
            sink.event(event)
            report.events += 1
            report.by_type[event["event_type"]] += 1
            report.by_agency[event["source"]["agency"]] += 1
            progress.advance()
    except BaseException:
        progress.finish()
        sink.abort()
        raise
    progress.finish()
    sink.close()
    report.elapsed_s = time.monotonic() - began
    log.debug(
        "simulation finished",
        events=report.events,
        elapsed_s=round(report.elapsed_s, 2),
        rate=round(report.rate, 1),
        counts={**report.by_agency, "consent_records": report.consents},
    )
    return report
