"""A connector killed between Kafka's commit and its own checkpoint does not send the batch
again (issue 20, item 6).

Before: the checkpoint was written only after the transaction committed, so a kill in that
window re-sent the whole batch on restart (2 of 7 kills mid-file: 399 events twice, which the
filter passed on). Now each batch carries its checkpoint in the same transaction, and a
restart resumes from what Kafka committed. The kill is modelled exactly: the local
checkpoint write dies after the first commit.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path

import pytest
from conftest import read_topic

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.assembly import run_file_connector
from connectors.police import synthetic as police_syn
from connectors.registry import parts_for
from connectors.runtime.checkpoint import CheckpointStore, FileProgress
from connectors.runtime.delivery import TransactionalDelivery
from connectors.runtime.pipeline import FileConnector

MAPPING = Path(__file__).resolve().parents[2] / "connectors" / "mappings" / "police-domestic-abuse.yaml"


class Killed(BaseException):
    """The process dies (kill -9) right after Kafka committed a batch."""


class DiesAtFirstCheckpoint(CheckpointStore):
    def put(self, file_id: str, progress: FileProgress) -> None:
        raise Killed


def test_a_kill_between_kafka_commit_and_checkpoint_sends_nothing_twice(
    kafka: Settings, tmp_path: Path
) -> None:
    n, batch = 120, 50
    export = police_syn.write_csv(
        tmp_path / "incidents.csv",
        police_syn.DOMESTIC_ABUSE_COLUMNS,
        police_syn.domestic_abuse_rows(n, random.Random(9)),
    )
    name = "police-window"
    parts = parts_for("police", export, None, MAPPING)
    store = DiesAtFirstCheckpoint(kafka.connector_dir(name))
    store.lock()
    delivery = TransactionalDelivery(kafka, "police", name)
    runner = FileConnector(name, parts.reader, parts.mapper, delivery, store, batch_size=batch)
    with pytest.raises(Killed):
        runner.run_batch(export, threading.Event())
    store.unlock()  # the kernel releases a dead process's lock
    assert not list((kafka.connector_dir(name) / "files").glob("*.json")), "no local checkpoint was written"

    summary = run_file_connector(
        kafka,
        "police",
        export,
        parts_for("police", export, None, MAPPING),
        name,
        threading.Event(),
        batch_size=batch,
    )
    assert summary.counts["already_done"] == batch, summary.line()

    codecs = Codecs(registry_for(kafka))
    ids = Counter(
        codecs.event.decode(m.value())["event_id"]
        for m in read_topic(kafka, "sg.ingress.police.v1", expect=n + batch, timeout=20)
    )
    assert len(ids) == n and max(ids.values()) == 1, f"{sum(c - 1 for c in ids.values())} event(s) sent twice"
