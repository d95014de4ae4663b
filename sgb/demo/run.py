"""``sgb demo``: the whole flow on the embedded default, with synthetic children.

Starts a local broker if none is running, applies the topics, runs the filter, publishes
a handful of synthetic police events, reads what each recipient received, prints it as
a table a person can read, and stops what it started.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import KafkaException

from broker.clients import admin_client, consumer, flush_or_raise, producer
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.topics import apply
from broker.exceptions import SgbError
from broker.logs import configure
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.child_keys import consent_key
from schemas.identifiers import synthetic_nhs_number
from schemas.topics import AUDIT_TOPIC, CONSENT_TOPIC, load_declaration
from sgb.demo.report import Echo, print_mix, print_tables
from sgb.ops.status import dead_letter_counts, dead_letters, group_lags
from sgb.ops.topic_reads import committed_offsets, partition_ends

# Synthetic children: invented names, NHS numbers from the 999 test range.
_CHILDREN = [
    ("Ada", "Testington", date(2022, 3, 14), "202", "100000", "F83004"),
    ("Ben", "Fictionby", date(2016, 9, 2), "202", "100000", "F83004"),
    ("Cara", "Madeupson", date(2012, 1, 20), "203", "100001", "F83019"),
]


def demo_events(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    """A handful of synthetic DOMESTIC_ABUSE_INCIDENT events from the Metropolitan Police."""
    events = []
    for i, (given, family, born, la, urn, gp) in enumerate(_CHILDREN):
        occurred = now - timedelta(hours=10 - i)
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "DOMESTIC_ABUSE_INCIDENT",
                "occurred_at": occurred,
                "recorded_at": occurred + timedelta(minutes=40),
                "source": {
                    "agency": "POLICE",
                    "organisation": "metropolitan",
                    "organisation_name": "Metropolitan Police Service",
                    "system": "sgb-demo",
                    "record_id": f"DEMO-{i + 1:04d}",
                    "contact": {
                        "team": "Public Protection Unit (demo)",
                        "phone": "020 7946 0000",
                        "email": None,
                        "reference": f"CAD-{4000 + i}",
                    },
                },
                "risk": "SIGNIFICANT_HARM" if i == 2 else "NEEDS_SUPPORT",
                "child": {
                    "nhs_number": synthetic_nhs_number(rng),
                    "upn": None,
                    "la_child_id": None,
                    "police_person_reference": f"DEMO-P{i + 1:03d}",
                    "given_name": given,
                    "family_name": family,
                    "date_of_birth": born,
                    "ethnicity": None,
                    "address": {
                        "line1": f"{10 + i} Example Street",
                        "line2": None,
                        "town": "London",
                        "postcode": "NW1 0AA",
                    },
                    "confidential_address": (
                        {"line1": "Refuge (demo)", "line2": None, "town": "London", "postcode": "N1 9ZZ"}
                        if i == 2
                        else None
                    ),
                    "school_urn": urn,
                    "gp_practice_ods": gp,
                    "local_authority_code": la,
                },
                "related_people": [
                    {
                        "role": "ALLEGED_PERPETRATOR",
                        "relationship_to_child": "mother's partner",
                        "given_name": "Dan",
                        "family_name": "Placeholder",
                        "date_of_birth": date(1990, 5, 5),
                        "address": None,
                    }
                ],
                "details": {
                    "incident_at": occurred,
                    "child_present": i != 1,
                    "child_injured": i == 2,
                    "offence_types": ["Assault occasioning actual bodily harm"],
                    "dash_risk_level": "HIGH" if i == 2 else "MEDIUM",
                    "arrest_made": i == 2,
                    "protective_measures": None,
                },
                "narrative": "Officers attended a reported argument (synthetic demo text).",
                "withheld_fields": [],
                "generalised_fields": {},
            }
        )
    return events


def default_log_file(settings: Settings) -> Path:
    """Where the demo writes the log lines of every process it runs."""
    return settings.state_dir / "demo" / "demo.log"


def run_demo(
    settings: Settings, echo: Echo, timeout: float = 90.0, log_file: Path | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Run the demo; returns what each delivery topic received, by topic.

    Raises:
        SgbError: when a step fails, or when anything other than the one deliberately bad
            police row reached the dead-letter topic.
    """
    log_file = log_file or default_log_file(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as logs:
        configure(settings.log_level, "json", stream=logs)
        echo(f"Log lines of every process the demo runs go to {log_file}.")
        try:
            return _run_demo(settings, echo, timeout, logs)
        finally:
            configure(settings.log_level, settings.log_format)


def _run_demo(
    settings: Settings, echo: Echo, timeout: float, logs: TextIO
) -> dict[str, list[dict[str, Any]]]:
    from connectors.runtime.publisher import EventPublisher
    from consent.filter.service import FilterService

    # Every event is signed by its connector and every delivery by the filter, and every
    # personal field is sealed per child from the connector onwards (the child itself a
    # pseudonym in Kafka); the hubs' view below opens them, as a hub does. Every process the
    # demo starts gets these settings.
    settings = settings.model_copy(update={"field_encryption": "on", "provenance": True})
    began_at = datetime.now(UTC) - timedelta(seconds=1)
    broker = LocalKafka(settings)
    started_broker = False
    if settings.bootstrap_servers is None:
        echo(f"Starting a local Apache Kafka broker on {broker.bootstrap} ...")
        began = time.monotonic()
        started_broker = broker.start()
        echo(
            f"  Kafka {'started' if started_broker else 'was already running'} "
            f"({time.monotonic() - began:.1f} s)."
        )
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        report = apply(settings, load_declaration(settings.declaration_file()))
        echo(
            f"Topics: {len(report.created)} created, {len(report.altered)} changed, "
            f"{len(report.unchanged)} unchanged."
        )
        service = FilterService(settings, group_id="sgb-demo-filter", instance="demo")
        failure: list[BaseException] = []

        def _run() -> None:
            try:
                service.run(stop)
            except BaseException as exc:  # reported below, in the main thread
                failure.append(exc)
                service.ready.set()

        thread = threading.Thread(target=_run, name="filter", daemon=True)
        thread.start()
        if not service.ready.wait(60) or failure:
            msg = f"The filter did not start: {failure[0] if failure else 'timed out'}."
            raise SgbError(msg)
        echo(
            "Filter running (consent-and-role policy: baseline). Provenance on: connectors sign, the "
            "filter verifies and signs deliveries. Field encryption on: every personal field travels "
            "sealed under each child's own key, and Kafka knows each child by a pseudonym."
        )
        rng = random.Random()
        events = demo_events(rng, datetime.now(UTC).replace(microsecond=0))
        publisher = EventPublisher(settings, "POLICE")
        for event in events:
            publisher.publish(event)
        publisher.flush()
        echo(f"Published {len(events)} synthetic DOMESTIC_ABUSE_INCIDENT events to sg.ingress.police.v1.")
        from sgb.demo.sources import run_file_connectors, run_mllp, run_school_and_la

        with tempfile.TemporaryDirectory(prefix="sgb-demo-") as work:
            run_file_connectors(settings, Path(work), echo, rng, logs)
            run_mllp(settings, echo, rng, logs)
            run_school_and_la(settings, Path(work), echo, rng, logs)
        from sgb.demo.identity import print_index_join, publish_index_join

        joined = publish_index_join(settings, echo, rng)
        mix = _simulated_mix(settings, echo)
        ids = {e["event_id"] for e in [*events, *joined, *mix]}
        received = _collect(settings, ids, len(ids) * 7, timeout)
        _check_dead_letters(settings, echo, began_at, timeout)
        first = {e["event_id"] for e in events}
        print_tables(
            echo,
            events,
            {
                "audits": [a for a in received["audits"] if a["event_id"] in first],
                "deliveries": {
                    t: kept
                    for t, copies in received["deliveries"].items()
                    if (kept := [c for c in copies if c["event_id"] in first])
                },
            },
        )
        print_mix(echo, mix, received["audits"])
        print_index_join(echo, joined, received["audits"])
        deliveries: dict[str, list[dict[str, Any]]] = received["deliveries"]
        return deliveries
    finally:
        stop.set()
        if thread is not None:
            thread.join(30)
        if started_broker:
            broker.stop()
            echo("Stopped the Kafka broker the demo started.")


#: The one dead letter the demo makes on purpose: row 5 of the police export is bad.
EXPECTED_DEAD_LETTERS = {"connector:police": 1}


def _check_dead_letters(settings: Settings, echo: Echo, began_at: datetime, timeout: float) -> None:
    """Once the filter has read every ingress record, list this run's dead letters; fail on any
    the demo did not make on purpose (an unsigned or undecodable event is a lost record)."""
    wait_for_filter(settings, "sgb-demo-filter", timeout)
    letters = [d for d in dead_letters(settings) if d.failed_at >= began_at]
    by_component = Counter(d.component for d in letters)
    echo("")
    echo(f"Dead letters this run: {len(letters)}")
    for count in dead_letter_counts(iter(letters)):
        echo(f"  {count.component}: {count.count} ({count.reason})")
    unexpected = {
        component: n - EXPECTED_DEAD_LETTERS.get(component, 0)
        for component, n in by_component.items()
        if n > EXPECTED_DEAD_LETTERS.get(component, 0)
    }
    if unexpected:
        listed = ", ".join(f"{n} from {component}" for component, n in sorted(unexpected.items()))
        msg = f"The demo found unexpected dead letters ({listed}); `sgb dlq list` shows why."
        raise SgbError(msg)


def wait_for_filter(settings: Settings, group: str, timeout: float) -> None:
    """Wait until ``group`` has no lag on any ingress topic (every connector's record decided)."""
    admin = admin_client(settings)
    deadline = time.monotonic() + timeout
    while True:
        lags = group_lags(settings, partition_ends(settings, admin), committed_offsets(settings, admin))
        behind = sum(lag.lag for lag in lags if lag.group == group and lag.role == "filter")
        if behind == 0:
            return
        if time.monotonic() > deadline:
            msg = f"The filter still had {behind} ingress record(s) to decide after {timeout:.0f} s."
            raise SgbError(msg)
        time.sleep(1)


def _simulated_mix(settings: Settings, echo: Echo, count: int = 140) -> list[dict[str, Any]]:
    """Publish a synthetic mix of all 14 event types about a small population (sgb simulate)."""
    from connectors.runtime.publisher import EventPublisher
    from sgb.simulate.events import Population, Simulator

    seed = random.randrange(1 << 30)  # fresh event ids on every run
    simulator = Simulator(Population(30, seed=seed), seed=seed)
    consents = list(simulator.consent_records(40))
    codecs = Codecs(registry_for(settings, read_only=True))
    prod = producer(settings)
    for record in consents:
        prod.produce(
            settings.topic(CONSENT_TOPIC),
            key=(consent_key(record) or "").encode(),
            value=codecs.consent.encode(record),
        )
    flush_or_raise(prod, 30, "publishing consent records")
    echo(f"Published {len(consents)} synthetic consent records for family help to sg.consent.v1.")
    time.sleep(2)  # let the filter see consent before the events it governs
    events = list(simulator.events(count))
    publishers: dict[str, EventPublisher] = {}
    for event in events:
        agency = event["source"]["agency"]
        if agency not in publishers:
            publishers[agency] = EventPublisher(settings, agency)
        publishers[agency].publish(event)
    for publisher in publishers.values():
        publisher.flush()
    echo(
        f"Published {len(events)} more synthetic events of all 14 types from all four agencies (sgb simulate)."
    )
    return events


def _collect(settings: Settings, ids: set[str], audits_expected: int, timeout: float) -> dict[str, Any]:
    """Read the audit and delivery topics until every decision for ``ids`` is in."""
    from broker.security.ciphers import Revealer

    codecs = Codecs(registry_for(settings, read_only=True))
    reveal = Revealer(settings)
    cons = consumer(settings, f"sgb-demo-reader-{uuid.uuid4()}")
    prefix = settings.topic_prefix.replace(".", r"\.")
    cons.subscribe([f"^{prefix}sg\\.deliver\\..*", settings.topic(AUDIT_TOPIC)])
    audits: list[dict[str, Any]] = []
    deliveries: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(audits) < audits_expected and time.monotonic() < deadline:
            for message in cons.consume(500, timeout=0.5):
                if message.error():
                    continue
                topic = str(message.topic())
                if topic.endswith(AUDIT_TOPIC):
                    for record in codecs.audit.decisions(message.value() or b""):
                        if record["event_id"] in ids:
                            audits.append(record)
                else:
                    event = codecs.event.decode(message.value() or b"")
                    if event["event_id"] in ids:
                        deliveries.setdefault(topic, []).append(reveal(event))
    except KafkaException as exc:
        msg = f"Reading the results failed: {exc.args[0].str()}."
        raise SgbError(msg) from None
    finally:
        cons.close()
    if len(audits) < audits_expected:
        msg = f"Only {len(audits)} of {audits_expected} decisions arrived within {timeout:.0f} s."
        raise SgbError(msg)
    return {"audits": audits, "deliveries": deliveries}
