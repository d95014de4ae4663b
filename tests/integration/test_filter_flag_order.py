"""A child's flags survive the filter reading its own status records back late (issue 20, item 1).

The filter publishes a ChildStatus record to ``sg.status.v1`` whenever a flag changes and reads
that topic back before each batch. A record that comes back after a newer flag event has been
decided must not overwrite the newer state, or a child on a child protection plan looks
flag-free when it attends an emergency department.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from conftest import RunningFilter, read_topic
from factories import distinct_children, event
from test_connector_files import read_all
from test_filter_kafka import publish

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.runtime.corrections import correction_notice
from schemas.child_keys import child_key

CHILDREN = 40


def _sequence(nhs: str) -> list[dict[str, Any]]:
    la = {"responsible_local_authority_code": "203"}
    return [
        event("LOOKED_AFTER_STATUS", nhs_number=nhs, detail_values={"change": "STARTED", **la}),
        event("CHILD_PROTECTION_PLAN", nhs_number=nhs, detail_values={"change": "STARTED", **la}),
        event("LOOKED_AFTER_STATUS", nhs_number=nhs, detail_values={"change": "ENDED", **la}),
        event("EMERGENCY_ATTENDANCE", nhs_number=nhs),
    ]


def test_a_plan_is_not_forgotten_when_an_older_status_record_comes_back(
    kafka: Settings, group_id: str
) -> None:
    seeds = distinct_children([event("EMERGENCY_ATTENDANCE") for _ in range(CHILDREN)])
    sequences = [_sequence(seed["child"]["nhs_number"]) for seed in seeds]
    flag_events = [ev for seq in sequences for ev in seq[:3]]
    attendances = {seq[3]["event_id"]: seq[3] for seq in sequences}
    codecs = Codecs(registry_for(kafka))

    with RunningFilter(kafka, group_id=group_id, instance="order", batch_size=1):
        # The flag events first, one per transaction; the attendances only once all are decided,
        # so that the flags they meet are the filter's settled state, not a race between topics.
        publish(kafka, *flag_events)
        read_topic(kafka, "sg.audit.decisions.v1", expect=len(flag_events), timeout=120)
        publish(kafka, *attendances.values())
        audits = [
            decision
            for m in read_topic(
                kafka, "sg.audit.decisions.v1", expect=len(flag_events) + CHILDREN, timeout=120
            )
            for decision in codecs.audit.decisions(m.value())
        ]

    mash = {a["event_id"]: a for a in audits if a["event_id"] in attendances and a["audience"] == "MASH"}
    lost = sorted(eid for eid, a in mash.items() if a["outcome"] != "SHARE")
    assert len(mash) == CHILDREN
    assert lost == [], (
        f"{len(lost)} of {CHILDREN} children on a plan had their attendance withheld from the MASH"
    )
    assert {a["reason"] for a in mash.values()} != {"condition_not_met"}

    statuses = {}  # the last record per child, as compaction keeps it
    # Read to the end, not to a count: the filter publishes a record again when an older one
    # comes back (that is the point of this test), so a count can be reached with a child unread.
    for msg in read_all(kafka, "sg.status.v1"):
        statuses[msg.key().decode()] = codecs.status.decode(msg.value())
    assert len(statuses) == CHILDREN
    assert all(s["child_protection_plan_active"] and not s["looked_after_active"] for s in statuses.values())


def test_a_plan_its_authority_withdraws_no_longer_sends_the_childs_attendances_to_the_mash(
    kafka: Settings, group_id: str
) -> None:
    """A withdrawn plan (a record entered in error, or gone from the authority's next complete
    return) is a RETRACTED notice of the plan's start. Before, the child stayed flagged for good
    and every later attendance went to the MASH; now the attendance after it is withheld, while
    the one before it was shared, and the withdrawal reaches the plan's recipients."""
    (seed,) = distinct_children([event("EMERGENCY_ATTENDANCE")])
    nhs = seed["child"]["nhs_number"]
    la = {"responsible_local_authority_code": "203"}
    started = event("CHILD_PROTECTION_PLAN", nhs_number=nhs, detail_values={"change": "STARTED", **la})
    before, after = (event("EMERGENCY_ATTENDANCE", nhs_number=nhs) for _ in range(2))
    notice = correction_notice(
        event_id=str(uuid.uuid4()),
        kind="RETRACTED",
        corrects_event_id=started["event_id"],
        event_type="CHILD_PROTECTION_PLAN",
        child_key=str(child_key(started["child"])),
        source=started["source"],
        at=datetime.now(UTC),
    )
    codecs = Codecs(registry_for(kafka))
    with RunningFilter(kafka, group_id=group_id, instance="withdrawn", batch_size=1):
        for decided, ev in enumerate((started, before, notice, after), start=1):  # each sees the one before
            publish(kafka, ev)
            audits = read_topic(kafka, "sg.audit.decisions.v1", expect=decided, timeout=120)
    decisions = [d for m in audits for d in codecs.audit.decisions(m.value())]
    mash = {d["event_id"]: d for d in decisions if d["audience"] == "MASH"}
    assert mash[before["event_id"]]["outcome"] == "SHARE"
    assert (mash[after["event_id"]]["outcome"], mash[after["event_id"]]["reason"]) == (
        "WITHHOLD",
        "condition_not_met",
    )
    told = {
        d["audience"] for d in decisions if d["event_id"] == notice["event_id"] and d["outcome"] == "SHARE"
    }
    shared = {
        d["audience"] for d in decisions if d["event_id"] == started["event_id"] and d["outcome"] == "SHARE"
    }
    assert told == shared and "EMERGENCY_CARE" in told  # the withdrawal follows the plan, to no one else
    last = codecs.status.decode(read_all(kafka, "sg.status.v1")[-1].value())  # one child: one partition
    assert not last["child_protection_plan_active"] and last["updated_by_event_id"] == notice["event_id"]
