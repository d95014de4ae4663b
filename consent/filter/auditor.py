"""Writing an event's decisions on record: one AuditRecord per event, in its ingress
partition's hash chain (POLICY.md principle 7; :mod:`consent.audit_chain`)."""

from __future__ import annotations

from typing import Any

from broker.wire.audit_codec import AuditCodec
from consent.audit import decision_entry, event_fields
from consent.engine import Decision
from consent.filter.audit_chains import AuditChains
from consent.identity import Resolution

#: Most entries kept (each a few hundred bytes).
_ENTRIES = 20_000


class EventAuditor:
    """Produces the audit record of each decided event, inside the batch's transaction.

    Args:
        codec: writes the record in pieces (each decision's bytes cached).
        chains: the chain heads of the ingress partitions this process owns.
        topic: the audit topic (physical name).
    """

    __slots__ = ("_chains", "_codec", "_entries", "topic")

    def __init__(self, codec: AuditCodec, chains: AuditChains, topic: str) -> None:
        self._codec = codec
        self._chains = chains
        self.topic = topic
        # A decision's entry bytes by what the entry says (most events repeat a few hundred
        # combinations), so a repeat builds neither the entry's dict nor its bytes.
        self._entries: dict[tuple[Any, ...], bytes] = {}

    def entry(self, decision: Decision) -> bytes:
        """The AuditEntry bytes of ``decision``: ``decision_entry`` written by the codec."""
        key = (
            decision.audience,
            decision.organisation,
            decision.outcome,
            decision.reason,
            decision.rule,
            decision.lawful_basis,
            decision.consent_state,
            decision.removed_fields,
            decision.transformed_fields,
            decision.organisation_source,
            decision.correction,
            decision.corrects_event_id,
        )
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= _ENTRIES:
                self._entries.clear()
            found = self._entries[key] = self._codec.entry(decision_entry(decision))
        return found

    def record(
        self,
        producer: Any,
        decisions: list[Decision],
        decided_at_ms: int,
        origin: tuple[str, int],
        identity: Resolution | None = None,
    ) -> None:
        """Produce one record carrying ``decisions`` (one event's, in order), linked into the
        chain of the ingress partition ``origin`` (topic, partition) the event was read from;
        ``identity`` says which identifier the event used and the links relied on."""
        if not decisions:
            return
        first = decisions[0]
        event = event_fields(first.event_id, first.event_type, first.policy_version, decided_at_ms, identity)
        entries = [self.entry(decision) for decision in decisions]
        body, digest, partition = self._chains.link(
            lambda chain: self._codec.body(event, entries, chain), origin[0], origin[1]
        )
        producer.produce(
            self.topic,
            key=first.event_id.encode(),
            value=self._codec.frame(body, digest),
            partition=partition,
        )
