"""A hospital's merge (HL7 A40) on a real broker (issues 14 and 17): the filter links the two
records, shares the merge with no one, names the link in its audit record, and decides the
next attendance under the merged hospital id against the child protection plan recorded under
the NHS number; an operator's unlink lists the share made on it."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from conftest import RunningFilter, read_topic
from factories import event
from test_filter_kafka import audits_for, publish

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.health import Hl7Mapper, Hl7Message
from connectors.runtime.event_builder import CHILD_FIELDS
from connectors.runtime.records import SourceRecord
from consent.identity import link_id
from schemas.identifiers import synthetic_nhs_number
from sgb.ops import identity as operator
from sgb.ops.trace import read_trace

RNG = random.Random(1740)


def child(**fields: Any) -> dict[str, Any]:
    return dict.fromkeys(CHILD_FIELDS) | {"local_authority_code": "202", **fields}


def attendance_under_mrn(mrn: str) -> dict[str, Any]:
    """An attendance that names the child by the hospital's id only, demographics unlike the plan's."""
    ids = {"local_patient_id": mrn, "local_patient_id_issuer": "RXX", "gp_practice_ods": "F83004"}
    return event("EMERGENCY_ATTENDANCE", **child(given_name="Zed", family_name="Elsewhere-Test", **ids))


def a40(nhs: str, mrn: str) -> dict[str, Any]:
    """The event the HL7 connector publishes for "H1 is the NHS-numbered patient"."""
    text = "\r".join(
        [
            "MSH|^~\\&|PAS|RXX|SGB|SGB|20261121090000||ADT^A40^ADT_A39|A40-1|P|2.4",
            "EVN|A40|20261121090000",
            f"PID|1||{nhs}^^^NHS^NH||Okonkwo-Test^Amara||20160314|F",
            f"MRG|{mrn}^^^RXX^MR",
        ]
    )
    record = SourceRecord(
        "health-hl7", "mllp://pas", "mllp:pas", 0, "message 1", Hl7Message(text), text.encode()
    )
    return Hl7Mapper()(record)


def test_an_a40_joins_an_attendance_under_the_mrn_to_a_plan_under_the_nhs_number(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    nhs = synthetic_nhs_number(RNG)
    plan = event(
        "CHILD_PROTECTION_PLAN",
        detail_values={"change": "STARTED", "responsible_local_authority_code": "202", "start_date": date(2026, 10, 1)},
        **child(nhs_number=nhs, given_name="Amara", family_name="Okonkwo-Test", date_of_birth=date(2016, 3, 14)),
    )  # fmt: skip
    before = attendance_under_mrn("H1")
    publish(kafka, plan, before)
    audits = audits_for(kafka, 2)
    mash = next(a for a in audits if a["event_id"] == before["event_id"] and a["audience"] == "MASH")
    assert mash["outcome"] == "WITHHOLD" and mash["identity_links"] is None  # nothing joins them yet

    merge = a40(nhs, "H1")
    publish(kafka, merge)
    audits = audits_for(kafka, 3)
    merged = [a for a in audits if a["event_id"] == merge["event_id"]]
    # Shared with no one: every audience withheld, no rule, no lawful basis; the link it made is named.
    assert len(merged) == 7 and all(
        (a["outcome"], a["reason"], a["rule"], a["lawful_basis"]) == ("WITHHOLD", "no_rule", None, None)
        for a in merged
    )
    lid = link_id(f"nhs:{nhs}", "lpi:RXX:H1")
    assert merged[0]["identity_links"] == [
        {"link_id": lid, "rule": "HOSPITAL_MERGE", "band": "DETERMINISTIC"}
    ]
    traced = read_trace(kafka, merge["event_id"])  # what `sgb audit trace` prints
    assert traced["recipients"] == [] and len(traced["decisions"]) == 7
    assert traced["identity_links"] == merged[0]["identity_links"]
    links = [
        Codecs(registry_for(kafka)).identity_link.decode(m.value())
        for m in read_topic(kafka, "sg.identity.links.v1", expect=1)
    ]
    assert [(r["link_id"], r["rule"], r["event_id"]) for r in links] == [
        (lid, "HOSPITAL_MERGE", merge["event_id"])
    ]

    after = attendance_under_mrn("H1")
    publish(kafka, after)
    audits = audits_for(kafka, 4)
    mash = next(a for a in audits if a["event_id"] == after["event_id"] and a["audience"] == "MASH")
    assert mash["outcome"] == "SHARE" and mash["organisation"] == "202"
    assert mash["child_identifier"] == "LOCAL_PATIENT_ID"
    assert [(x["link_id"], x["rule"]) for x in mash["identity_links"]] == [(lid, "HOSPITAL_MERGE")]

    undone = operator.decide(
        kafka, "lpi:RXX:H1", f"nhs:{nhs}", linked=False, reason="wrong merge", operator="op1"
    )
    assert [s["event_id"] for s in undone.shares if s["audience"] == "MASH"] == [after["event_id"]]
