"""A fresh filter rebuilds per-child state from the compacted topics in chunks (issue 21,
item 5): the store commits as it goes, so memory stays bounded, and the read positions it
saves resume a restart where the last chunk ended."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import TopicPartition

from broker.clients import consumer, producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from consent.filter.state_reader import BATCH, StateReader
from consent.filter.store import SqliteStore
from consent.state import ChildState

CHILDREN = 3000


class CountingStore(SqliteStore):
    """The real store, counting its commits and the most states it held uncommitted."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits = 0
        self.most_uncommitted = 0
        self._uncommitted = 0

    def put(self, key: str, state: ChildState) -> None:
        super().put(key, state)
        self._uncommitted += 1
        self.most_uncommitted = max(self.most_uncommitted, self._uncommitted)

    def put_row(self, key: str, row: str) -> None:  # a fresh rebuild's first state for a child
        super().put_row(key, row)
        self._uncommitted += 1
        self.most_uncommitted = max(self.most_uncommitted, self._uncommitted)

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        super().commit(positions)
        self.commits += 1
        self._uncommitted = 0


def fill(settings: Settings, children: int, state: str = "GIVEN", first: int = 0) -> None:
    codecs = Codecs(registry_for(settings))
    prod = producer(settings)
    for i in range(first, children):
        record = {
            "consent_id": f"c{i}",
            "nhs_number": None,
            "la_child_id": f"T{i:07d}",
            "local_authority_code": "202",
            "audience": "FAMILY_HELP",
            "purpose": "FAMILY_HELP",
            "state": state,
            "given_by": "PARENT",
            "recorded_at": datetime(2026, 1, 5 if state == "GIVEN" else 6, 9, 0, tzinfo=UTC),
            "recorded_by": "202",
        }
        key = f"la:202:T{i:07d}|FAMILY_HELP|FAMILY_HELP"
        prod.produce(settings.topic("sg.consent.v1"), key=key.encode(), value=codecs.consent.encode(record))
    assert prod.flush(30) == 0


def test_catch_up_commits_in_chunks_and_saves_where_it_got_to(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    fill(kafka, CHILDREN)
    store = CountingStore(tmp_path / "state.db")
    reader = StateReader(kafka, store, Codecs(registry_for(kafka)), Counter(), group_id)
    reader.open("one")
    reader.catch_up(chunk=500)
    reader.close()
    assert store.count() == CHILDREN
    assert store.get("la:202:T0000007").consents[0].state == "GIVEN"
    # Several commits while reading, none holding more than a chunk and one consume batch.
    assert store.commits >= CHILDREN // (500 + min(BATCH, 500))
    assert store.most_uncommitted <= 500 + min(BATCH, 500)
    # The saved positions are the topic's end: a restart reads nothing again.
    cons = consumer(kafka, f"{group_id}-ends")
    topic = kafka.topic("sg.consent.v1")
    ends = {
        (topic, p): cons.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
        for p in cons.list_topics(topic, timeout=10).topics[topic].partitions
    }
    cons.close()
    saved = store.positions()
    assert {k: v for k, v in saved.items() if k[0] == topic} == {k: v for k, v in ends.items() if v > 0}
    store.close()


def test_a_warm_restart_reads_only_what_is_new_and_keeps_a_withdrawal(
    kafka: Settings, group_id: str, tmp_path: Path
) -> None:
    fill(kafka, 200)
    store = SqliteStore(tmp_path / "state.db")
    first = Counter[str]()
    reader = StateReader(kafka, store, Codecs(registry_for(kafka)), first, group_id)
    reader.open("one")
    reader.catch_up()
    reader.close()
    store.close()
    assert first["consent_records"] == 200
    fill(kafka, 8, state="WITHDRAWN", first=7)  # one child's consent withdrawn while it was down
    store = SqliteStore(tmp_path / "state.db")
    again = Counter[str]()
    reader = StateReader(kafka, store, Codecs(registry_for(kafka)), again, group_id)
    reader.open("one")
    reader.catch_up()
    reader.close()
    assert again["consent_records"] == 1  # from the saved positions, not the start
    assert store.get("la:202:T0000007").consents[0].state == "WITHDRAWN"
    assert store.get("la:202:T0000008").consents[0].state == "GIVEN"
    store.close()
