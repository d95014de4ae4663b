"""The filter's decision on one event, inside its batch's transaction.

Read (verify, decode, open), skip a re-send, validate (principle 8), name the child, observe
its identity evidence, derive its state, decide every audience, write each share's delivery
(its copy written by the compiled Avro writer, :mod:`broker.wire.avro_writer`), then one
audit record and the share ledger entry. Whatever it produces goes through the producer of
the open transaction (:mod:`consent.filter.service` commits or aborts it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from broker.exceptions import SerdeError
from broker.logs import get_logger
from broker.security import provenance
from broker.security.ciphers import FilterCrypt
from broker.security.pseudonyms import is_pseudonym
from broker.settings import Settings
from broker.wire import dead_letters as deadletter
from broker.wire.codecs import Codecs
from broker.wire.envelope import DeliveryEnvelope, EnvelopeReader, Refusal
from consent.audit import withhold
from consent.corrections import as_original, correction_of
from consent.engine import Decision, Engine
from consent.exceptions import EventInvalid
from consent.filter import shares
from consent.filter.auditor import EventAuditor
from consent.filter.headers import delivery_headers
from consent.filter.identity import FilterIdentity
from consent.filter.state_reader import StateReader
from consent.filter.store import StateStore
from consent.merges import is_merge, merge_resolution
from schemas.child_keys import NO_CHILD, child_key
from schemas.topics import IDENTITY_LINKS_TOPIC
from schemas.validation import SEALED_PREFIX, InvalidEvent, validate_event
from schemas.vocabulary import CorrectionKind, Outcome, Reason

log = get_logger("consent.filter")

COMPONENT = "filter"

#: Why an event whose identifiers arrive sealed is refused by a filter running with field encryption off.
SEALED_CHILD = (
    "The child's identifiers are sealed; run the filter with SGB_FIELD_ENCRYPTION=on to decide on them."
)


class Tally:
    """What one batch did, counted as it goes and reported once it commits."""

    __slots__ = ("agencies", "dead", "decisions")

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str, str]] = Counter()
        self.agencies: Counter[str] = Counter()
        self.dead = 0

    def clear(self) -> None:
        self.decisions.clear()
        self.agencies.clear()
        self.dead = 0


class EventDecider:
    """Decides events one at a time for the filter (:meth:`handle`).

    Args:
        settings: topic names, the prefix.
        codecs: the serdes of the filter's record types.
        reader: verifies, decodes and opens an ingress message.
        deliveries: writes a share's delivery message.
        crypt: the filter's field encryption (an erasure notice may name its child by pseudonym).
        name: names the child in Kafka and in state (its pseudonym with field encryption on).
        engine: the engine of the policy in force; :attr:`engine` is replaced on a reload.
        book: the share ledger.
        identity: one child across agencies (principle 11).
        state: the per-child state the engine decides against.
        store: the filter's state store.
        auditor: writes each event's audit record.
        counts: the filter's running counts.
    """

    def __init__(
        self,
        settings: Settings,
        codecs: Codecs,
        reader: EnvelopeReader,
        deliveries: DeliveryEnvelope,
        crypt: FilterCrypt,
        name: Callable[[str], str],
        engine: Engine,
        book: shares.ShareBook,
        identity: FilterIdentity,
        state: StateReader,
        store: StateStore,
        auditor: EventAuditor,
        counts: Counter[str],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.counts = counts
        self.tally = Tally()
        self._codecs = codecs
        self._reader = reader
        self._deliveries = deliveries
        self._crypt = crypt
        self._name = name
        self._shares = book
        self._identity = identity
        self._state = state
        self._store = store
        self._auditor = auditor

    def prepare(self, messages: list[Message]) -> None:
        """Verify a batch's signatures ahead of :meth:`handle`, on all cores."""
        self._reader.prepare(messages)

    def handle(self, producer: Any, msg: Message, decided_at: Callable[[], int]) -> None:
        """Decide ``msg``'s event and produce all that follows from it with ``producer`` (the
        open transaction's); ``decided_at`` gives the decision time in epoch milliseconds."""
        if msg.error():
            return
        origin = deadletter.Origin(msg.topic(), msg.partition(), msg.offset())
        read = self._reader.read(msg)
        if isinstance(read, Refusal):  # undecodable, unsigned or forged: nothing is decided or shared
            self._dead_letter(producer, msg, read.reason, origin, read.event_id)
            return
        event, reusable = read.event, read.reusable
        if self._shares.decided(str(event.get("event_id"))):  # a re-send: decided and delivered once
            self.counts["already_decided"] += 1
            return
        self.tally.agencies[str((event.get("source") or {}).get("agency"))] += 1
        arrived_as, original = event.get("event_id"), as_original(event, self._shares.decided)
        event, reusable = (original, False) if original is not None else (event, reusable)
        correction = correction_of(event)
        try:  # principle 8: the same validation as `sgb policy evaluate`, before state or decisions
            # (a retraction or erasure carries no content that is shared: only its metadata)
            if correction is None or correction[0] is CorrectionKind.AMENDED:
                validate_event(event)
        except InvalidEvent as exc:
            self._dead_letter(producer, msg, str(exc), origin, event.get("event_id"))
            return
        plain = child_key(event.get("child") or {})
        if plain is not None and SEALED_PREFIX in plain:  # a filter without the vault cannot tell whose
            self._dead_letter(producer, msg, SEALED_CHILD, origin, event.get("event_id"))
            return
        key = self._name(plain) if plain is not None else self._notice_key(msg, correction)
        if key is None:
            self._dead_letter(producer, msg, NO_CHILD, origin, event.get("event_id"))
            return
        made = self._identity.observe(event)
        for link in made:  # deterministic evidence (a source's merge too), demographic matches
            producer.produce(
                self.settings.topic(IDENTITY_LINKS_TOPIC),
                key=link.link_id.encode(),
                value=self._codecs.identity_link.encode(link.record()),
            )
            self.counts["identity_" + link.state.lower()] += 1
        # A merge, an amendment or an erasure changes no flag or organisation: the state stands. A
        # retraction of the event that set a flag as it stands undoes it (consent.state_updates).
        merge = is_merge(event)
        stands = merge or (correction is not None and correction[0] is not CorrectionKind.RETRACTED)
        after = self._store.get(key) if stands else self._state.derive(producer, key, event)
        view, identity = self._identity.view(key, after, self._store.get)  # the linked child's state
        identity = (
            merge_resolution(identity, made) if merge else identity
        )  # the audit names the merge's links
        try:
            decisions = shares.decide(self.engine, self._shares, event, view)
        except EventInvalid as exc:
            self._dead_letter(producer, msg, str(exc), origin, event.get("event_id"))
            return
        now = decided_at()
        # A copy with nothing withheld or transformed is the ingress event itself: reuse its bytes.
        untouched = (
            msg.value()
            if reusable and not event.get("withheld_fields") and not event.get("generalised_fields")
            else None
        )
        decided = [self._deliver(producer, decision, (key, plain or ""), untouched) for decision in decisions]
        # One audit record for the event, all its decisions (principle 7), in its partition's chain;
        # it names the identifier the event used and the links the decisions relied on (principle 11).
        self._auditor.record(
            producer, decided, now, (str(origin.topic), int(origin.partition or 0)), identity
        )
        shares.settle(
            self._shares, event, key, decided, now, str(arrived_as) if original is not None else None
        )
        self.counts["corrections"] += correction is not None

    def _notice_key(self, msg: Message, correction: Any) -> str | None:
        """The child of an erasure notice that names none: with field encryption on, ``sgb
        erase`` keys it by the child's pseudonym alone, so the notice carries no identifier."""
        if not self._crypt.enabled or correction is None or correction[0] is not CorrectionKind.ERASED:
            return None
        key = (msg.key() or b"").decode(errors="replace")
        return key if is_pseudonym(key) else None

    def _deliver(
        self,
        producer: Any,
        decision: Decision,
        child: tuple[str, str],
        untouched: bytes | None,
    ) -> Decision:
        """Produce the decision's delivery, if a share; returns the decision as made (a share
        whose redacted copy cannot be written is withheld, reason redaction_failed). ``child``
        is (the child as the filter names it, its key for the data key: "" for a notice that
        names no child, nothing of it to seal)."""
        key, seal_as = child
        topic = decision.topic
        if decision.outcome is Outcome.SHARE and decision.event is not None and topic is not None:
            reuse = untouched is not None and not decision.removed_fields and not decision.transformed_fields
            delivery_key = self.engine.delivery_key(key, decision.audience, str(decision.organisation))
            try:
                wire = self._deliveries.wrap(
                    self.settings.topic(topic),
                    decision.event,
                    seal_as,
                    delivery_key.encode(),
                    [*delivery_headers(decision)],
                    untouched if reuse else None,
                )
            except SerdeError:
                decision = withhold(decision, Reason.REDACTION_FAILED)
            else:
                producer.produce(wire.topic, key=wire.key, value=wire.value, headers=wire.headers)
        self.counts["shared" if decision.outcome is Outcome.SHARE else "withheld"] += 1
        self.tally.decisions[(decision.audience.value, decision.outcome.value, decision.reason.value)] += 1
        return decision

    def _dead_letter(
        self, producer: Any, msg: Message, reason: str, origin: deadletter.Origin, event_id: str | None = None
    ) -> None:
        deadletter.send(
            producer,
            self.settings,
            self._codecs,
            component=COMPONENT,
            reason=reason,
            payload=msg.value(),
            origin=origin,
            key=msg.key(),
            event_id=event_id,
            content_type="application/vnd.sgb.avro",
            extra_headers=provenance.carried(msg.headers()),
        )  # a replay verifies again
        self.counts["dead_lettered"] += 1
        self.tally.dead += 1
        log.warning(
            "event dead-lettered",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            event_id=event_id,
            reason=reason,
        )
