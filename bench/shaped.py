"""(a') The filter's real I/O limit: a transactional pass-through with the filter's output shape.

For each ingress message it produces what the filter would for that event (each shared copy's
bytes and the event's audit record, computed offline with the engine and this tree's audit
codec), with the filter's producer settings and transactions of up to 500 events, and commits
the consumed offsets in the same transaction. No decode, no decision: the I/O the filter cannot
avoid. Used by ``bench/filter.py``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

import schemas
from broker.clients import admin_client, consumer, producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from consent.engine import Engine
from consent.filter.audit_chains import AuditChains
from consent.filter.auditor import EventAuditor
from consent.policy import load
from consent.state import ChildState
from schemas.topics import load_declaration


class _Collect:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def produce(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        self.values.append(value)


def output_shape(events: list[dict[str, Any]]) -> list[list[bytes]]:
    """Per event, the values the filter writes for it: shared copies, then the audit record."""
    organisations = load_declaration().deliveries.organisations
    engine = Engine(
        load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda a, o: o in organisations.get(str(a), [])
    )
    codecs = Codecs(InMemoryRegistry())
    chains = AuditChains(partitions=6)
    chains.learn([TopicPartition("ingress", 0, -1001)])
    auditor = EventAuditor(codecs.audit, chains, "audit")
    out = []
    for event in events:
        decisions = engine.decide(event, ChildState())
        values = [codecs.event.encode(d.event) for d in decisions if d.event is not None]
        audit = _Collect()
        auditor.record(audit, decisions, time.time_ns() // 1_000_000, ("ingress", 0))
        out.append(values + audit.values)
    return out


def shaped_pass_through(
    settings: Settings, keyed: list[tuple[bytes, bytes]], shape: list[list[bytes]]
) -> float:
    """Events/s of the pass-through producing ``shape[i]`` for input message ``i``."""
    src, dst = settings.topic(f"bench.shaped.in.{uuid.uuid4().hex[:6]}"), settings.topic("bench.shaped.out")
    admin = admin_client(settings)
    for future in admin.create_topics([NewTopic(src, 6, 1), NewTopic(dst, 6, 1)]).values():
        with contextlib.suppress(Exception):  # the output topic may exist from a previous run
            future.result()
    time.sleep(1)
    prod = producer(settings, **{"linger.ms": 20})
    for index, (key, value) in enumerate(keyed):
        prod.produce(src, key=key, value=value, headers=[("i", str(index).encode())])
    prod.flush(60)
    txn = producer(
        settings,
        transactional_id=f"bench-shaped-{uuid.uuid4().hex[:6]}",
        **{"transaction.timeout.ms": 30000, "linger.ms": 2},
    )
    txn.init_transactions(30)
    cons = consumer(settings, f"bench-shaped-{uuid.uuid4().hex[:6]}")
    cons.subscribe([src])
    done, began = 0, None
    while done < len(keyed):
        first = cons.poll(1.0)
        if first is None:
            continue
        batch = [m for m in [first, *cons.consume(499, timeout=0)] if not m.error()]
        began = began or time.perf_counter()
        txn.begin_transaction()
        offsets: dict[tuple[str, int], int] = {}
        for msg in batch:
            index = int(dict(msg.headers() or [])["i"])
            for value in shape[index]:
                while True:
                    try:
                        txn.produce(dst, key=msg.key(), value=value)
                        break
                    except BufferError:
                        txn.poll(0.01)
            offsets[(str(msg.topic()), int(msg.partition() or 0))] = int(msg.offset() or 0) + 1
        txn.send_offsets_to_transaction(
            [TopicPartition(t, p, o) for (t, p), o in offsets.items()], cons.consumer_group_metadata(), 30
        )
        txn.commit_transaction(60)
        done += len(batch)
    elapsed = time.perf_counter() - (began or time.perf_counter())
    cons.close()
    return len(keyed) / elapsed
