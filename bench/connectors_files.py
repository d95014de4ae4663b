"""Connector benchmark, all in one run on one broker: records/s per source format against raw
produce of the same number of pre-encoded events.

  (a) raw produce of pre-encoded events: idempotent, and in transactions of --batch-size;
  (b) police CSV export -> DOMESTIC_ABUSE_INCIDENT (the shipped mapping file), target >= 20,000/s;
  (c) FHIR R4 NDJSON -> health events (every line a resource, Patients included), target >= 5,000/s;
  (c2) the same resources as FHIR XML Bundles of 500 entries, and as a Bulk Data export folder
      (one NDJSON file per resource type, Encounter.ndjson before Patient.ndjson by name), so
      every reference resolves across files; same target;
  (d) HL7 v2 ADT over MLLP, each message answered only after Kafka acknowledged its event,
      from a sender process with --connections connections, target >= 2,000/s. A connection
      has one message in flight (original-mode acknowledgement), so its rate is one over the
      round trip (Kafka's acks=all included); senders get throughput from connections.

(b) and (c) run the same code as ``sgb connector run`` (transactions, checkpoints, dead
letters, and for police the snapshot store that tells a re-exported record's amendment);
(d) runs the command itself. The broker is SGB_BENCH_BOOTSTRAP if set, else a
local one started for the run.

    .venv/bin/python bench/connectors_files.py [--records 100000] [--resources 25000] [--messages 10000]
                                         [--connections 8,16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# The repository first, so that a tree's bench runs that tree's packages.
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import importlib.util

_spec = importlib.util.spec_from_file_location("_bench_kafka", HERE / "_kafka.py")
assert _spec is not None and _spec.loader is not None
_bench_kafka = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench_kafka)
bench_kafka = _bench_kafka.bench_kafka

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.assembly import snapshot_parts
from connectors.exceptions import MappingError, NoEvent
from connectors.health import FhirMapper, FhirReader, load_profile
from connectors.health import synthetic as health_syn
from connectors.police import PoliceMapper, load_mapping, reader_for
from connectors.police import synthetic as police_syn
from connectors.registry import CORRECTING_AGENCIES, SNAPSHOT_AGENCIES
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.delivery import TransactionalDelivery
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.progress import Progress
from connectors.runtime.readers import FileRef
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery
from schemas.topics import ingress_topic

MAPPINGS = Path(__file__).resolve().parent.parent / "connectors" / "mappings"
SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"


def raw_produce(settings: Settings, values: list[tuple[bytes, bytes]], batch: int | None) -> float:
    """Events/s producing pre-encoded events, acks=all; in transactions of ``batch`` when given."""
    topic = settings.topic(ingress_topic("POLICE"))
    prod = producer(
        settings,
        transactional_id=f"bench-raw-{time.time_ns()}" if batch else None,
        **{"linger.ms": 20, "batch.num.messages": 10000},
    )
    if batch:
        prod.init_transactions(30)
    began = time.perf_counter()
    for start in range(0, len(values), batch or len(values)):
        if batch:
            prod.begin_transaction()
        for key, value in values[start : start + (batch or len(values))]:
            while True:
                try:
                    prod.produce(topic, value, key, on_delivery=_ignore)
                    break
                except BufferError:
                    prod.poll(0.05)
            prod.poll(0)
        if batch:
            prod.commit_transaction(60)
    prod.flush(60)
    return len(values) / (time.perf_counter() - began)


def _ignore(error: Any, message: Any) -> None:
    return None


def pre_encoded(settings: Settings, path: Path, count: int) -> list[tuple[bytes, bytes]]:
    mapping = load_mapping(MAPPINGS / "police-domestic-abuse.yaml")
    mapper, codecs = PoliceMapper(mapping), Codecs(registry_for(settings))
    out = []
    for record in reader_for(mapping, "csv").records(FileRef(path, "raw", path.name, "raw")):
        event = mapper(record)
        out.append((f"nhs:{event['child']['nhs_number']}".encode(), codecs.event.encode(event)))
        if len(out) == count:
            break
    return out


def file_connector(
    settings: Settings, agency: str, name: str, reader: Any, mapper: Any, path: Path, batch_size: int
) -> tuple[float, Any]:
    """Records/s of the file connector over one file (startup excluded), and its summary."""
    store = CheckpointStore(settings.state_dir / "connectors" / name)
    store.lock()
    delivery: Any = TransactionalDelivery(settings, agency, name)
    if agency.lower() in SNAPSHOT_AGENCIES or agency.lower() in CORRECTING_AGENCIES:
        # as `sgb connector run` has them: a force's record is remembered, to tell its amendments
        snapshot = SnapshotStore(store.root)
        reader, mapper = snapshot_parts(agency.lower(), reader, mapper, snapshot)
        delivery = SnapshotDelivery(delivery, snapshot)
    try:
        runner = FileConnector(
            name,
            reader,
            mapper,
            delivery,
            store,
            batch_size=batch_size,
            progress=Progress(__import__("collections").Counter(), interactive=False, interval_s=3600),
        )
        began = time.perf_counter()
        summary = runner.run_batch(path, threading.Event())
        elapsed = time.perf_counter() - began
    finally:
        delivery.close()
        store.unlock()
    return summary.counts["read"] / elapsed, summary


def mapping_only(reader: Any, mapper: Any, path: Path) -> float:
    """Records/s reading and mapping (no encoding, no Kafka): the ceiling the mapping sets."""
    began = time.perf_counter()
    count = 0
    for record in reader.records(FileRef(path, "m", path.name, "m")):
        count += 1
        with contextlib.suppress(NoEvent, MappingError):
            mapper(record)
    return count / (time.perf_counter() - began)


def sum_mapping_only(reader: Any, mapper: Any, folder: Path) -> float:
    """Records/s reading and mapping every file of a folder, in name order (no Kafka)."""
    began = time.perf_counter()
    count = 0
    for path in sorted(folder.iterdir()):
        for record in reader.records(FileRef(path, "m", path.name, path.name)):
            count += 1
            with contextlib.suppress(NoEvent, MappingError):
                mapper(record)
    return count / (time.perf_counter() - began)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def mllp_send(port: int, messages: list[bytes], connections: int) -> tuple[float, dict[str, int]]:
    """Messages/s with ``connections`` senders, each waiting for every ACK before the next message."""
    from hl7.mllp import open_hl7_connection

    codes: dict[str, int] = {}

    async def sender(chunk: list[bytes]) -> None:
        reader, writer = await open_hl7_connection("127.0.0.1", port)
        for message in chunk:
            writer.writeblock(message)
            await writer.drain()
            ack = await reader.readblock()
            code = ack.split(b"\rMSA|", 1)[1][:2].decode()
            codes[code] = codes.get(code, 0) + 1
        writer.close()

    chunks = [messages[i::connections] for i in range(connections)]
    began = time.perf_counter()
    await asyncio.gather(*(sender(chunk) for chunk in chunks))
    return len(messages) / (time.perf_counter() - began), codes


def mllp(settings: Settings, count: int, connections: int) -> tuple[float, dict[str, int]]:
    port = free_port()
    env = dict(
        os.environ,
        SGB_BOOTSTRAP_SERVERS=settings.bootstrap,
        SGB_TOPIC_PREFIX=settings.topic_prefix,
        SGB_STATE_DIR=str(settings.state_dir),
        SGB_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SGB,
            "connector",
            "run",
            "health",
            "--source",
            f"mllp://127.0.0.1:{port}",
            "--mapping",
            str(MAPPINGS / "health-example.yaml"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rng = random.Random(7)
    try:
        probe = [health_syn.adt_message(10**7, rng).encode()]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the listener answers AA (Kafka ready)
            try:
                if asyncio.run(mllp_send(port, probe, 1))[1].get("AA"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        messages = [health_syn.adt_message(i, rng).encode() for i in range(count)]
        return asyncio.run(mllp_send(port, messages, connections))
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="CSV rows, and raw events")
    parser.add_argument(
        "--resources", type=int, default=25_000, help="FHIR event resources (each after its Patient)"
    )
    parser.add_argument("--messages", type=int, default=10_000, help="HL7 v2 messages over MLLP")
    parser.add_argument("--connections", default="8,16", help="MLLP sender connections, comma-separated runs")
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sgb-bench-connectors-"))
    rng = random.Random(1)
    csv_path = police_syn.write_csv(
        work / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(args.records, rng),
    )
    fhir_path = health_syn.write_ndjson(
        work / "health.ndjson", health_syn.fhir_resources(args.resources, rng)
    )
    print(
        f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; "
        f"broker: {os.environ.get('SGB_BENCH_BOOTSTRAP') or 'local, started for the run'}"
    )
    with bench_kafka() as settings:
        values = pre_encoded(settings, csv_path, args.records)
        idempotent = raw_produce(settings, values, None)
        transactional = raw_produce(settings, values, args.batch_size)
        print(
            f"(a) raw produce, pre-encoded:   {idempotent:>9,.0f} events/s idempotent; "
            f"{transactional:>9,.0f} events/s in transactions of {args.batch_size}"
        )

        mapping = load_mapping(MAPPINGS / "police-domestic-abuse.yaml")
        ceiling = mapping_only(reader_for(mapping, "csv"), PoliceMapper(mapping), csv_path)
        rate, summary = file_connector(
            settings,
            "POLICE",
            "bench-police",
            reader_for(mapping, "csv"),
            PoliceMapper(mapping),
            csv_path,
            args.batch_size,
        )
        print(
            f"(b) police CSV connector:       {rate:>9,.0f} records/s  (target 20,000; read+map alone "
            f"{ceiling:,.0f}/s; {summary.counts['published']:,} published)"
        )

        profile = load_profile(MAPPINGS / "health-example.yaml")
        ceiling = mapping_only(FhirReader(), FhirMapper(profile), fhir_path)
        rate, summary = file_connector(
            settings, "HEALTH", "bench-fhir", FhirReader(), FhirMapper(profile), fhir_path, args.batch_size
        )
        print(
            f"(c) FHIR NDJSON connector:      {rate:>9,.0f} resources/s (target 5,000; read+map alone "
            f"{ceiling:,.0f}/s; {summary.counts['published']:,} events from "
            f"{summary.counts['read']:,} resources)"
        )

        resources = health_syn.fhir_resources(args.resources, random.Random(2))
        xml_folder, bulk_folder = work / "fhir-xml", work / "fhir-bulk"
        xml_folder.mkdir()
        bulk_folder.mkdir()
        for start in range(0, len(resources), 500):
            health_syn.write_bundle_xml(xml_folder / f"b{start:08d}.xml", resources[start : start + 500])
        by_type: dict[str, list[Any]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        for kind, items in by_type.items():
            health_syn.write_ndjson(bulk_folder / f"{kind}.ndjson", items)
        for label, folder in (("FHIR XML Bundles:    ", xml_folder), ("FHIR Bulk Data export:", bulk_folder)):
            ceiling = sum_mapping_only(FhirReader(), FhirMapper(profile), folder)
            rate, summary = file_connector(
                settings,
                "HEALTH",
                f"bench-{folder.name}",
                FhirReader(),
                FhirMapper(profile),
                folder,
                args.batch_size,
            )
            print(
                f"(c2) {label}    {rate:>9,.0f} resources/s (target 5,000; read+map alone "
                f"{ceiling:,.0f}/s; {summary.counts['published']:,} events from "
                f"{summary.counts['read']:,} resources, {summary.counts['dead_lettered']:,} dead-lettered)"
            )

        for connections in (int(c) for c in args.connections.split(",")):
            rate, codes = mllp(settings, args.messages, connections)
            print(
                f"(d) HL7 v2 over MLLP:           {rate:>9,.0f} messages/s (target 2,000; "
                f"{connections} connections, one message in flight each; ACKs {codes})"
            )


if __name__ == "__main__":
    main()
