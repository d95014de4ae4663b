"""The audit hash chain without Kafka: sealing records, and the verifier finding each kind of tampering."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from confluent_kafka import TopicPartition

from broker.wire.audit_codec import AuditCodec, flatten, record_writer
from broker.wire.registry import InMemoryRegistry
from consent.audit import event_fields
from consent.audit_chain import GENESIS, Head, audit_partition, bytes_hash, hashed_body, record_hash
from consent.audit_verify import ChainVerifier
from consent.filter.audit_chains import AuditChains

TOPIC = "sg.ingress.police.v1"
CODEC = AuditCodec(InMemoryRegistry())
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
#: A record as the verifier is fed it: decoded as written, and its Avro binary (no framing).
Written = tuple[dict[str, Any], bytes]


def decision(n: int) -> dict[str, Any]:
    """An older AuditDecision record (one per decision), enums as strings."""
    return {
        "event_id": f"evt-{n}",
        "event_type": "DOMESTIC_ABUSE_INCIDENT",
        "audience": "MASH",
        "organisation": "202",
        "outcome": "SHARE",
        "reason": None,
        "rule": "r1",
        "lawful_basis": "public_task",
        "consent_state": None,
        "policy_version": "v1",
        "removed_fields": ["narrative"],
        "transformed_fields": [],
        "decided_at": datetime(2026, 11, 23, 10, 0, tzinfo=UTC) + timedelta(microseconds=1234567 * n),
        "delivery_topic": "sg.deliver.mash.202.v1",
    }


def entries(n: int) -> list[dict[str, Any]]:
    """The decisions of event ``n`` as consent/audit.py builds them (an AuditEntry each)."""
    mash = {
        k: v
        for k, v in decision(n).items()
        if k not in ("event_id", "event_type", "policy_version", "decided_at")
    }
    school = {**mash, "audience": "SCHOOL_DSL", "organisation": "100000", "outcome": "WITHHOLD"}
    return [mash, {**school, "reason": "no_rule", "rule": None, "lawful_basis": None, "delivery_topic": None}]


def link(chains: AuditChains, n: int, partition: int = 0) -> tuple[Written, int]:
    """Event ``n``'s record, written in pieces as the filter writes it."""
    event = event_fields(
        f"evt-{n}", "DOMESTIC_ABUSE_INCIDENT", "v1", T0 + timedelta(microseconds=1234567 * n)
    )
    pieces = [CODEC.entry(e) for e in entries(n)]
    body, digest, audit = chains.link(lambda chain: CODEC.body(event, pieces, chain), TOPIC, partition)
    value = CODEC.frame(body, digest)
    return (CODEC.decode(value), value[5:]), audit


def sealed_chain(count: int, partition: int = 0) -> list[Written]:
    chains = AuditChains(partitions=6)
    chains.learn([TopicPartition(TOPIC, partition, -1001)])  # nothing committed yet
    records = [link(chains, n, partition)[0] for n in range(count)]
    chains.commit()
    return records


def rewritten(record: dict[str, Any], *, rehash: bool = False) -> Written:
    """``record`` encoded again as given; with ``rehash``, with a record_hash made for it."""
    payload = CODEC.encode(record)[5:]
    if rehash:
        body = payload[: -len(record["record_hash"]) - 2]
        record = {**record, "record_hash": bytes_hash(body)}
        payload = CODEC.encode(record)[5:]
    return record, payload


def verify(records: list[Written], expected: dict[str, Head] | None = None, **options: Any) -> ChainVerifier:
    checker = ChainVerifier(expected=expected or {}, **options)
    for offset, (record, payload) in enumerate(records):
        checker.feed(0, offset, record, payload)
    checker.check_heads(expected)
    return checker


def legacy_chain(count: int) -> list[Written]:
    """Older AuditDecision records, chained over their canonical JSON (as written before)."""
    out: list[Written] = []
    previous = GENESIS
    for n in range(count):
        record = {**decision(n), "chain": f"{TOPIC}:0", "sequence": n, "previous_hash": previous}
        record["decided_at"] = record["decided_at"].replace(microsecond=0)
        record["record_hash"] = previous = record_hash(record)
        out.append((record, b""))
    return out


def test_sealed_records_link_from_genesis_and_hash_their_bytes() -> None:
    written = sealed_chain(3)
    records = [r for r, _ in written]
    assert [r["sequence"] for r in records] == [0, 1, 2]
    assert records[0]["previous_hash"] == GENESIS
    assert records[1]["previous_hash"] == records[0]["record_hash"]
    for record, payload in written:
        body = hashed_body(payload, record["record_hash"])
        assert body is not None and bytes_hash(body) == record["record_hash"]
    assert {r["chain"] for r in records} == {f"{TOPIC}:0"}
    assert [d["audience"] for d in records[1]["decisions"]] == ["MASH", "SCHOOL_DSL"]


def test_the_record_written_in_pieces_is_the_record_avro_writes_whole() -> None:
    # The cached pieces (and the cached bytes of a decision seen before) concatenate to exactly
    # the bytes of the whole record, so any Avro reader reads it and the hash covers it.
    chains = AuditChains(partitions=6)
    chains.learn([TopicPartition(TOPIC, 0, -1001)])
    for n in (1, 2, 1):
        (record, payload), _ = link(chains, n)
        assert CODEC.encode(record)[5:] == payload
    empty = {**record, "decisions": []}
    assert CODEC.body(empty, [], empty) == CODEC.encode(empty)[5:-66]


def test_every_decision_reads_flat_whichever_form_it_was_written_in() -> None:
    [(record, _)] = sealed_chain(1)
    flat = flatten(record)
    assert [d["audience"] for d in flat] == ["MASH", "SCHOOL_DSL"]
    assert all(d["event_id"] == "evt-0" and d["chain"] == f"{TOPIC}:0" for d in flat)
    assert flat[1]["reason"] == "no_rule" and flat[0]["policy_version"] == "v1"
    old = decision(3)
    assert flatten(old) == [old]


def test_older_per_decision_records_and_newer_ones_verify_in_one_chain() -> None:
    old = legacy_chain(3)
    chains = AuditChains(partitions=6)
    metadata = Head(2, old[-1][0]["record_hash"]).metadata()
    chains.learn([TopicPartition(TOPIC, 0, 3, metadata=metadata)])
    (new, payload), _ = link(chains, 3)
    assert new["sequence"] == 3 and new["previous_hash"] == old[-1][0]["record_hash"]
    assert verify([*old, (new, payload)], {f"{TOPIC}:0": Head(3, new["record_hash"])}).problems == []
    changed = {**old[1][0], "outcome": "WITHHOLD"}
    problems = verify([old[0], (changed, b""), old[2], (new, payload)]).problems
    assert [p.offset for p in problems] == [1]


def test_an_intact_chain_passes_with_its_head() -> None:
    records = sealed_chain(5)
    head = {f"{TOPIC}:0": Head(4, records[-1][0]["record_hash"])}
    checker = verify(records, head)
    assert checker.problems == []
    assert checker.records == 5


def test_a_changed_field_is_detected() -> None:
    records = sealed_chain(5)
    record = records[2][0]
    records[2] = rewritten({**record, "decisions": [{**record["decisions"][0], "outcome": "WITHHOLD"}]})
    problems = [str(p) for p in verify(records).problems]
    assert problems == [
        f"partition 0 offset 2 chain {TOPIC}:0: sequence 2: content does not match its "
        "record_hash (record changed)"
    ]


def test_a_changed_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    records = sealed_chain(5)
    record = records[2][0]
    records[2] = rewritten({**record, "event_type": "MISSING_EPISODE"}, rehash=True)
    problems = verify(records).problems
    assert [(p.offset, "previous_hash does not match" in p.what) for p in problems] == [(3, True)]


def test_a_removed_record_is_detected() -> None:
    records = sealed_chain(5)
    del records[2]
    problems = verify(records).problems
    assert len(problems) == 1
    assert problems[0].offset == 2 and "sequence 3 follows 1: 1 record(s) missing" in problems[0].what


def test_two_swapped_records_are_detected() -> None:
    records = sealed_chain(5)
    records[1], records[2] = records[2], records[1]
    problems = verify(records).problems
    assert [p.offset for p in problems] == [1, 2]
    assert "sequence 2 follows 0" in problems[0].what
    assert "sequence 1 follows 2 (out of order" in problems[1].what


def test_a_removed_tail_is_detected_against_the_committed_head() -> None:
    records = sealed_chain(5)
    head = {f"{TOPIC}:0": Head(4, records[-1][0]["record_hash"])}
    problems = verify(records[:-1], head).problems
    assert len(problems) == 1
    assert (
        "chain ends at sequence 3 but the committed head is sequence 4: 1 newest record(s) missing"
        in problems[0].what
    )
    # Without the head, the links alone cannot see it.
    assert verify(records[:-1]).problems == []


def test_a_removed_first_record_is_detected() -> None:
    problems = verify(sealed_chain(3)[1:]).problems
    assert len(problems) == 1 and "chain starts at sequence 1, not 0" in problems[0].what


def test_records_beyond_the_latest_committed_head_are_reported() -> None:
    records = sealed_chain(4)
    checker = ChainVerifier(expected={f"{TOPIC}:0": Head(2, records[2][0]["record_hash"])})
    for offset, (record, payload) in enumerate(records):
        checker.feed(0, offset, record, payload)
    checker.check_heads({f"{TOPIC}:0": Head(2, records[2][0]["record_hash"])})
    assert len(checker.problems) == 1 and "beyond the committed head 2" in checker.problems[0].what
    # ... but not when the filter committed them while the topic was being read.
    checker.problems.clear()
    checker.check_heads({f"{TOPIC}:0": Head(3, records[3][0]["record_hash"])})
    assert checker.problems == []


def test_unchained_records_are_reported_unless_legacy_ones_are_allowed() -> None:
    # Issue 20, item 3: an unchained record before a partition's chained ones was silently
    # counted "from before chaining", so anyone could prepend fabricated decisions.
    unchained = {**decision(99), "chain": None, "sequence": None, "previous_hash": None, "record_hash": None}
    legacy: Written = (unchained, b"")
    checker = verify([legacy, *sealed_chain(2)])
    assert (
        len(checker.problems) == 1
        and "nothing proves it was written by the filter" in checker.problems[0].what
    )
    checker = verify([legacy, *sealed_chain(2)], allow_legacy=True)
    assert checker.problems == [] and checker.unchained == 1
    # An unchained record among chained ones is reported even then.
    checker = verify([*sealed_chain(2), legacy], allow_legacy=True)
    assert len(checker.problems) == 1 and "no complete chain fields" in checker.problems[0].what


def test_fabricated_and_misplaced_chains_and_chains_without_a_head_are_reported() -> None:
    real = sealed_chain(2)
    chains = {f"{TOPIC}:0", f"{TOPIC}:1"}
    home = audit_partition(f"{TOPIC}:0", 6)
    head = {f"{TOPIC}:0": Head(1, real[-1][0]["record_hash"])}

    def run(records: list[Written], partition: int) -> ChainVerifier:
        checker = ChainVerifier(expected=dict(head), chains=chains, audit_partitions=6, heads_checked=True)
        for offset, (record, payload) in enumerate(records):
            checker.feed(partition, offset, record, payload)
        checker.check_heads(dict(head))
        return checker

    assert run(real, home).problems == []
    # The same records under a chain for a partition that does not exist, or a real name plus a space.
    for name in (f"{TOPIC}:7", f"{TOPIC}:0 "):
        forged = [rewritten({**real[0][0], "chain": name}, rehash=True)]
        forged.append(
            rewritten(
                {**real[1][0], "chain": name, "previous_hash": forged[0][0]["record_hash"]}, rehash=True
            )
        )
        whats = " | ".join(p.what for p in run(forged, audit_partition(name, 6)).problems)
        assert "names no ingress partition" in whats and "no committed head" in whats
    # A real chain's records on another audit partition.
    whats = " | ".join(p.what for p in run(real, (home + 1) % 6).problems)
    assert f"its name maps to {home}" in whats


def test_an_aborted_batch_does_not_advance_the_head_and_the_head_travels_in_the_offsets() -> None:
    chains = AuditChains(partitions=6)
    chains.learn([TopicPartition(TOPIC, 1, -1001)])  # nothing committed yet
    (first, _), _ = link(chains, 1, 1)
    [tp] = chains.offsets([TopicPartition(TOPIC, 1, 10)])
    assert Head.parse(tp.metadata) == Head(0, first["record_hash"]) and tp.offset == 10
    chains.abort()
    with pytest.raises(LookupError):  # after an abort, the heads are read again before use
        link(chains, 1, 1)
    chains.learn([TopicPartition(TOPIC, 1, -1001)])
    (redone, _), partition = link(chains, 1, 1)
    assert redone["sequence"] == 0 and redone["previous_hash"] == GENESIS
    assert partition == audit_partition(f"{TOPIC}:1", 6)
    chains.commit()
    assert chains.head(TOPIC, 1) == Head(0, redone["record_hash"])


def test_a_new_owner_continues_from_the_committed_head() -> None:
    records = sealed_chain(3)
    chains = AuditChains(partitions=6)
    assert chains.unknown([(TOPIC, 0), (TOPIC, 0)]) == [(TOPIC, 0)]
    chains.learn([TopicPartition(TOPIC, 0, 42, metadata=Head(2, records[-1][0]["record_hash"]).metadata())])
    assert chains.unknown([(TOPIC, 0)]) == []
    nxt, _ = link(chains, 3)
    assert nxt[0]["sequence"] == 3 and nxt[0]["previous_hash"] == records[-1][0]["record_hash"]
    assert verify([*records, nxt]).problems == []


@pytest.mark.parametrize("metadata", [None, "", "something else", "sgb-audit:x:y", "sgb-audit:3:short"])
def test_metadata_that_is_not_a_head_reads_as_none(metadata: str | None) -> None:
    assert Head.parse(metadata) is None


def test_null_fields_added_later_do_not_change_an_older_records_hash() -> None:
    [(record, _)] = legacy_chain(1)
    assert record_hash({**record, "some_later_field": None}) == record["record_hash"]


def test_a_record_whose_hash_is_not_its_last_field_does_not_verify() -> None:
    [(record, payload)] = sealed_chain(1)
    assert hashed_body(payload + b"\x00", record["record_hash"]) is None
    problems = verify([(record, payload + b"\x00")]).problems
    assert len(problems) == 1 and "does not match its record_hash" in problems[0].what


def test_a_decision_field_holding_a_record_is_written_by_fastavro_with_the_same_bytes() -> None:
    # A field added to AuditEntry later may hold a record, which the compiled writer refuses.
    schema = {
        "type": "record",
        "name": "Later",
        "fields": [
            {"name": "audience", "type": "string"},
            {
                "name": "link",
                "type": {"type": "record", "name": "Link", "fields": [{"name": "a", "type": "string"}]},
            },
        ],
    }
    write = record_writer(schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), {"audience": "MASH", "link": {"a": "x"}})
    assert write({"audience": "MASH", "link": {"a": "x"}}) == buf.getvalue()
