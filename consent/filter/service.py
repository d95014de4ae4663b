"""``sgb filter run``: the engine on Kafka, exactly once.

One consumer group reads every ingress topic. Each batch is one Kafka transaction:
deliveries, audit records, status changes, dead letters and the consumed offsets commit
together or not at all, so a crash neither loses nor duplicates a delivery for a
``read_committed`` reader. Per-child state is read from the compacted consent and status
topics by every process (a global table), so any process can decide any child.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Message, TopicPartition

import schemas
from broker import metrics, tracing
from broker.clients import consumer, producer, wait_for_kafka
from broker.logs import get_logger
from broker.probes import Health
from broker.security import provenance
from broker.security.ciphers import FilterCrypt, child_namer
from broker.security.key_directory import key_provider
from broker.security.provenance import Signer
from broker.security.signing_keys import KeyStore
from broker.settings import Settings
from broker.transactions import bounded, next_offsets, retrying, rewind, watermarks
from broker.wire.codecs import Codecs
from broker.wire.envelope import DeliveryEnvelope, EnvelopeReader
from broker.wire.registry import registry_for
from consent import policy as policy_module
from consent.engine import Engine
from consent.filter import shares
from consent.filter.audit_chains import AuditChains
from consent.filter.auditor import EventAuditor
from consent.filter.decider import COMPONENT, EventDecider
from consent.filter.identity import FilterIdentity
from consent.filter.policy_file import Onboarded, PolicyFile
from consent.filter.state_reader import StateReader
from consent.filter.store import SqliteStore, StateStore
from consent.policy import Policy
from schemas.topics import (
    AUDIT_TOPIC,
    CONSENT_TOPIC,
    INGRESS_TOPICS,
    SHARES_TOPIC,
    STATUS_TOPIC,
)

log = get_logger("consent.filter")

INGRESS = INGRESS_TOPICS
# Kept importable from here: tests and benchmarks use them through this module.
__all__ = ["CONSENT_TOPIC", "STATUS_TOPIC", "FilterService", "watermarks"]


def _now_ms() -> int:
    """A decision's ``decided_at``: now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class FilterService:
    """The filter process.

    Args:
        settings: how to reach Kafka, where state lives.
        policy_path: the policy file; re-read when it changes, without a restart.
        group_id: the consumer group every filter process shares.
        instance: this process's stable name; its transactional id is derived from it, so a
            restarted instance fences and aborts whatever its predecessor left open.
        batch_size: most events in one transaction.
        store: per-child state; an on-disk store under the state directory by default.
    """

    def __init__(
        self,
        settings: Settings,
        policy_path: Path = policy_module.BASELINE,
        *,
        group_id: str | None = None,
        instance: str | None = None,
        batch_size: int = 500,
        store: StateStore | None = None,
    ) -> None:
        self.settings = settings
        self.policy_path = policy_path
        # Default names carry the topic prefix, so deployments sharing a cluster never share a
        # group or fence each other's transactions.
        self.group_id = group_id or f"{settings.topic_prefix}sgb-filter"
        self.instance = instance or socket.gethostname()
        self.batch_size = batch_size
        self.counts: Counter[str] = Counter()
        self._policy_file = PolicyFile(policy_path)
        self._policy = self._policy_file.policy
        self._codecs = Codecs(registry_for(settings))
        self._keys = key_provider(settings.keys_dir)
        self._pseudonym_key = self._keys.secret("pseudonymisation")
        # SGB_PROVENANCE: verify each ingress event's signature, sign each delivery (None when off).
        self._provenance = provenance.for_process(settings, provenance.FILTER_SIGNER)
        self._onboarded = Onboarded(settings)
        self._engine = self._make_engine(self._policy)
        self._crypt = FilterCrypt(settings, self._policy)
        self._store = store or SqliteStore(settings.filter_store(self.group_id, self.instance))
        # One child across agencies (principle 11): links on the compacted link topic, demographics sealed.
        self._identity = FilterIdentity(
            settings, settings.filter_store(self.group_id, self.instance), self._policy
        )
        self._state = StateReader(
            settings, self._store, self._codecs, self.counts, self.group_id, identity=self._identity
        )
        # The share ledger, written in each batch's transaction (principle 10; no second decision).
        self._shares = shares.ShareBook(self._store, self._put_share)
        self._assigned = False
        self._failures = 0
        self._transactional_id = ""
        self.ready = threading.Event()
        self.health = Health("filter")
        self.health.add_check("running", self.ready.is_set)
        # The audit chain heads are always signed with the filter's key (provenance on or off).
        self._chains = AuditChains(sign=Signer(KeyStore(settings.keys_dir), provenance.FILTER_SIGNER).sign)
        auditor = EventAuditor(self._codecs.audit, self._chains, settings.topic(AUDIT_TOPIC))
        # Each event's decision, one at a time, in the open transaction (consent/filter/decider.py).
        self._decider = EventDecider(
            settings,
            self._codecs,
            # The one way off the wire: verify, decode, open (the cipher follows policy reloads).
            EnvelopeReader(self._codecs.event, self._provenance, lambda event: self._crypt.open(event)),
            # The one way onto a recipient's topic: sealed, framed, keyed for it, decision headers, signed.
            DeliveryEnvelope(
                self._codecs.event, lambda event, child: self._crypt.seal(event, child), self._provenance
            ),
            self._crypt,
            # How the child is named in Kafka and in state: a pseudonym with field encryption on.
            child_namer(settings),
            self._engine,
            self._shares,
            self._identity,
            self._state,
            self._store,
            auditor,
            self.counts,
        )

    def _make_engine(self, policy: Policy) -> Engine:
        return Engine(policy, schemas.load("SafeguardingEvent"), self._pseudonym_key, self._onboarded)

    def _maybe_reload_policy(self) -> None:
        policy = self._policy_file.changed()
        if policy is not None:
            self._policy, self._engine = policy, self._make_engine(policy)
            self._decider.engine = self._engine
            self._crypt.use_policy(policy)
            self._identity.use_policy(policy)

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> Counter[str]:
        """Run until ``stop`` is set; returns the counts of what was done.

        Started before its broker (a pod scheduled first), the filter waits for Kafka with a
        log line every 30 s instead of failing.
        """
        if not wait_for_kafka(self.settings, stop):
            return self.counts
        self._onboarded.refresh(force=True)
        transactional_id = f"{self.group_id}-{self.instance}"
        self._transactional_id = transactional_id
        self._state.open(self.instance, writer=transactional_id)
        self._state.catch_up()
        self._producer = self._new_producer()
        self._consumer = consumer(
            self.settings,
            self.group_id,
            **{
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 10000,
                # A request on the consumer's connection (the audit topic's metadata read at the
                # first batch) waits behind a fetch the broker holds; the default 500 ms held the
                # first events after a start that long (issue 21, item 4). New events end a fetch
                # at once either way, so only an idle filter fetches more often.
                "fetch.wait.max.ms": 50,
            },
        )
        self._consumer.subscribe(
            [self.settings.topic(t) for t in INGRESS], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        log.info(
            "filter running",
            group=self.group_id,
            transactional_id=transactional_id,
            policy_version=self._policy.version_id,
        )
        self.ready.set()
        last_stats = time.monotonic()
        failed = False
        try:
            while not stop.is_set():
                self.health.beat()
                self._maybe_reload_policy()
                self._onboarded.refresh()
                messages = self._next_batch()
                if self._assigned:  # a partition moved here: read what its last owner shared first
                    self._assigned = False
                    self._state.catch_up()
                else:
                    self._state.drain()
                if messages:
                    self._process_batch(messages)
                if time.monotonic() - last_stats > 10:
                    log.info("filter progress", counts=dict(self.counts))
                    last_stats = time.monotonic()
        except BaseException as exc:
            failed = True
            log.error(
                "filter failed; stopping",
                exc_type=type(exc).__name__,
                reason=exc.args[0].str() if isinstance(exc, KafkaException) else None,
            )
            raise
        finally:
            # After a failure, leaving the group cleanly can block on a broken connection;
            # the group's session timeout frees the partitions instead.
            if not failed:
                self._consumer.close()
            self._state.close(leave=not failed)
            self._producer.flush(10)
            self._store.close()
            self._identity.close()
            log.info("filter stopped", counts=dict(self.counts))
        return self.counts

    def _next_batch(self) -> list[Message]:
        """Wait for the first event, then take whatever else has already arrived (up to the
        batch size): a quiet system decides each event at once, a busy one in large batches."""
        first = self._consumer.poll(0.2)
        if first is None:
            return []
        return [first, *self._consumer.consume(self.batch_size - 1, timeout=0)]

    def _new_producer(self) -> Any:
        prod = producer(
            self.settings,
            transactional_id=self._transactional_id,
            **{
                "transaction.timeout.ms": 30000,
                "linger.ms": 2,
                # A transaction begun while the broker still writes the last one's commit markers
                # is answered CONCURRENT_TRANSACTIONS and retried after this backoff: librdkafka's
                # default of 100 ms made every batch after a busy one wait that long (issue 21,
                # item 4; the Java client waits 20 ms). It doubles up to the maximum on repeats.
                "retry.backoff.ms": 5,
                "retry.backoff.max.ms": 100,
            },
        )
        retrying(lambda: prod.init_transactions(30))
        return prod

    def _send_offsets(self, offsets: list[TopicPartition]) -> None:
        group = self._consumer.consumer_group_metadata()
        bounded(
            lambda: self._producer.send_offsets_to_transaction(offsets, group, 20),
            30,
            "send_offsets_to_transaction",
        )

    def _renew_producer(self) -> None:
        """Replace an unusable transactional producer; the new one fences the old and aborts
        its open transaction."""
        old = self._producer
        self._producer = self._new_producer()
        del old
        log.warning("transactional producer replaced", transactional_id=self._transactional_id)

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            count=len(partitions),
            partitions=sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions),
        )
        self._chains.forget(partitions)  # the audit chain heads are read back from the committed offsets
        self._assigned = True

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Every batch commits its transaction before the next poll, so nothing is in flight here.
        log.info("partitions revoked", count=len(partitions))
        self._chains.forget(partitions)

    def _process_batch(self, messages: list[Message]) -> None:
        """The commit path. Everything a batch produces commits atomically with its offsets."""
        began = time.monotonic()
        tally = self._decider.tally
        tally.clear()
        # 1. Begin the transaction: nothing below is visible to read_committed readers yet.
        self._producer.begin_transaction()
        try:
            # 2. Decide each event; produce deliveries, audit records (each linked into the hash
            #    chain of its ingress partition, consent/audit_chain.py), status and dead letters.
            self._chains.begin(
                self._consumer,
                {(str(m.topic()), int(m.partition() or 0)) for m in messages},
                self.settings.topic(AUDIT_TOPIC),
            )
            self._decider.prepare(messages)  # verify the batch's signatures on all cores
            for msg in messages:
                with tracing.consumed("decide", msg):  # off: nothing; on: joins the event's trace
                    self._decider.handle(self._producer, msg, _now_ms)
            # 3. Put the consumed offsets, carrying the audit chain heads, in the same transaction.
            offsets = self._chains.offsets(next_offsets(messages))
            #    (Bounded: this call can hang when the group coordinator dies; see bounded().)
            retrying(lambda: self._send_offsets(offsets))
            # 4. Commit: deliveries, audit and offsets become visible together.
            retrying(lambda: bounded(lambda: self._producer.commit_transaction(60), 90, "commit_transaction"))
        except KafkaException as exc:
            # 5. Nothing of the batch is visible. If Kafka says the transaction must be
            #    aborted, abort; if the producer itself is unusable (fenced, fatal, or in a
            #    state it cannot leave), replace it: init_transactions under the same
            #    transactional id aborts whatever was left open. Either way rewind, so the
            #    batch is redone from its first offset, and forget the state it derived.
            error = exc.args[0]
            log.warning(
                "transaction failed; batch will be redone",
                reason=error.str(),
                count=len(messages),
                status=error.name(),
            )
            self._failures += 1
            if self._failures > 5:
                raise
            if error.txn_requires_abort():
                self._producer.abort_transaction(30)
            else:
                self._renew_producer()
            self._chains.abort()
            self._store.rollback()
            self._identity.rollback()
            rewind(self._consumer, messages)
            self.counts["aborted_batches"] += 1
            metrics.record_aborted_transaction()
            return
        except BaseException:
            with contextlib.suppress(KafkaException):
                self._producer.abort_transaction(30)
            self._chains.abort()
            self._store.rollback()
            self._identity.rollback()
            raise
        self._failures = 0
        # 6. Only now advance the audit chain heads, persist the state that this batch derived,
        #    and count what it did (an aborted batch is redone, so counting earlier would count
        #    it twice).
        self._chains.commit()
        self._store.commit(self._state.positions)
        self._identity.commit()
        self.counts["batches"] += 1
        metrics.record_filter_batch(time.monotonic() - began, dict(tally.agencies))
        metrics.set_filter_lag(self._consumer)
        for (audience, outcome, reason), count in tally.decisions.items():
            metrics.DECISIONS.labels(audience, outcome, reason).inc(count)
        # One line per batch, not per decision (the audit topic is the record of each decision).
        log.debug(
            "batch committed",
            count=len(messages),
            decisions=sum(tally.decisions.values()),
            dead_lettered=tally.dead,
        )
        if tally.dead:
            metrics.record_dead_letter(COMPONENT, tally.dead)

    def _put_share(self, event_id: str, entry: dict[str, Any]) -> None:
        self._producer.produce(
            self.settings.topic(SHARES_TOPIC), key=event_id.encode(), value=self._codecs.shares.encode(entry)
        )
