"""A file connector put together and run: checkpoints (one run per name at a time), the
delivery (transactional, or snapshot-aware for returns that restate everything), and the
read-map-publish loop of :class:`connectors.runtime.pipeline.FileConnector`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from broker.probes import Health
from broker.security.key_directory import key_provider
from broker.settings import Settings
from connectors.exceptions import ConnectorError
from connectors.registry import CORRECTING_AGENCIES, SNAPSHOT_AGENCIES, WITHDRAWING_AGENCIES
from connectors.runtime.checkpoint import CheckpointStore, validate_name
from connectors.runtime.delivery import TransactionalDelivery, committed_checkpoints
from connectors.runtime.dry_run import DryRunDelivery, MemoryCheckpoints, schema_check
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.records import ConnectorParts
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery, SnapshotMapper
from connectors.runtime.summary import Summary
from connectors.runtime.withdrawals import MappedOnce, WithdrawingReader


def run_file_connector(
    settings: Settings,
    agency: str,
    source: Path,
    parts: ConnectorParts,
    name: str,
    stop: threading.Event,
    *,
    watch: bool = False,
    batch_size: int = 5000,
    poll_interval: float = 2.0,
    throttle: float | None = None,
    health: Health | None = None,
) -> Summary:
    """Read ``source`` (a file or folder; with ``watch`` a drop folder, until ``stop``) and
    publish ``agency``'s events; returns what became of every record. ``health`` (a watch's
    probes) is live while the folder is watched and ready once Kafka took the connector's transactions.

    Raises:
        ConnectorError: the source does not exist, or another run holds this name's checkpoints.
    """
    agency = agency.lower()
    if not source.exists():
        msg = f"Source {source} does not exist."
        raise ConnectorError(msg)
    store = CheckpointStore(settings.connector_dir(validate_name(name)))
    store.lock()
    # A batch Kafka committed just before a kill, whose local checkpoint was never written.
    for file_id, committed in committed_checkpoints(settings, name).items():
        local = store.get(file_id)
        if local is None or (committed.done, committed.complete) > (local.done, local.complete):
            store.put(file_id, committed)
    delivery: Any = None
    snapshot: SnapshotStore | None = None
    reader, mapper = parts.reader, parts.mapper
    if health is not None:
        health.add_check("kafka", lambda: delivery is not None)
    try:
        if agency in SNAPSHOT_AGENCIES or agency in CORRECTING_AGENCIES:
            snapshot = SnapshotStore(store.root, keys=key_provider(settings.keys_dir))
            reader, mapper = snapshot_parts(agency, reader, mapper, snapshot)
            delivery = SnapshotDelivery(_delivery(settings, agency, name, parts, stop), snapshot)
        else:
            delivery = TransactionalDelivery(settings, agency, name, should_stop=stop.is_set)
        runner = FileConnector(
            name, reader, mapper, delivery, store, batch_size=batch_size, throttle=throttle
        )
        summary = (
            runner.run_watch(source, stop, poll_s=poll_interval, beat=health.beat if health else lambda: None)
            if watch
            else runner.run_batch(source, stop)
        )
        if snapshot is not None:
            summary.counts["unmatched"] = len(delivery.unmatched)
        return summary
    finally:
        if delivery is not None:
            delivery.close()
        store.unlock()


def dry_run_file_connector(
    settings: Settings, agency: str, source: Path, parts: ConnectorParts, name: str
) -> tuple[Summary, DryRunDelivery]:
    """Read and map ``source`` as a batch run would, with no Kafka: nothing is published or
    written, and no checkpoint (nor snapshot log) moves. Returns the summary and what would
    have been sent (every dead letter and data-quality finding with its place).

    Raises:
        ConnectorError: the source does not exist.
    """
    agency = agency.lower()
    if not source.exists():
        msg = f"Source {source} does not exist."
        raise ConnectorError(msg)
    delivery = DryRunDelivery(schema_check(getattr(parts.reader, "kind", None) or "event"))
    reader, mapper = parts.reader, parts.mapper
    if agency in SNAPSHOT_AGENCIES or agency in CORRECTING_AGENCIES:  # what was published stands
        root = settings.connector_dir(validate_name(name))
        snapshot = SnapshotStore(root, durable=False, keys=key_provider(settings.keys_dir))
        reader, mapper = snapshot_parts(agency, reader, mapper, snapshot)
    runner = FileConnector(name, reader, mapper, delivery, MemoryCheckpoints())
    return runner.run_batch(source, threading.Event()), delivery


def snapshot_parts(agency: str, reader: Any, mapper: Any, store: SnapshotStore) -> tuple[Any, Any]:
    """The reader and mapping function of a snapshot source: publishing changes only, and for the
    sources that correct themselves (:data:`CORRECTING_AGENCIES`) amending, and withdrawing what a
    complete return no longer has (:data:`WITHDRAWING_AGENCIES`)."""
    if agency in WITHDRAWING_AGENCIES:  # the withdrawal rule maps each fact: the mapper reuses it
        once = MappedOnce(mapper)
        return WithdrawingReader(reader, once, store), SnapshotMapper(once, store, corrects=True)
    return reader, SnapshotMapper(mapper, store, corrects=agency in CORRECTING_AGENCIES)


def _delivery(
    settings: Settings, agency: str, name: str, parts: ConnectorParts, stop: threading.Event
) -> Any:
    if getattr(parts.reader, "kind", None) == "consent":
        from connectors.local_authority import ConsentDelivery  # consent records go to sg.consent.v1

        return ConsentDelivery(settings, name, should_stop=stop.is_set)
    return TransactionalDelivery(settings, agency, name, should_stop=stop.is_set)
