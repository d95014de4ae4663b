"""The filter's auditor keeps each decision's entry bytes by what the entry says; a kept
entry is exactly the entry written afresh (issue 21, CPU per event)."""

from __future__ import annotations

import schemas
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from consent.audit import decision_entry
from consent.engine import Engine
from consent.filter.audit_chains import AuditChains
from consent.filter.auditor import EventAuditor
from consent.policy import load
from consent.state import ChildState, Consent
from sgb.simulate.events import Population, Simulator


def test_an_audit_entry_from_the_auditors_cache_is_the_entry_written_afresh() -> None:
    engine = Engine(load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda audience, org: org != "202")
    auditor = EventAuditor(Codecs(InMemoryRegistry()).audit, AuditChains(partitions=1), "audit")
    fresh = Codecs(InMemoryRegistry()).audit
    events = list(Simulator(Population(300, 19), 19).events(600))
    given = ChildState(
        consents=(Consent("FAMILY_HELP", "FAMILY_HELP", "GIVEN", "PARENT", events[0]["occurred_at"]),)
    )
    for n, event in enumerate(events):
        for decision in engine.decide(event, given if n % 2 else ChildState()):
            assert auditor.entry(decision) == fresh.entry(decision_entry(decision))
