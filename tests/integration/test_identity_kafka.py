"""One child across agencies on a real broker (POLICY.md principle 11, issue 17): the filter
decides against the linked child, an operator's unlink stops the join, twins wait for a person."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

from conftest import RunningFilter, read_topic, sgb_env
from factories import event
from test_filter_kafka import audits_for, publish, wait_for

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from schemas.child_keys import consent_key
from schemas.identifiers import synthetic_nhs_number
from sgb.ops import identity as operator

RNG = random.Random(1717)
BORN = date(2016, 3, 14)


def child(given: str, **ids: Any) -> dict[str, Any]:
    """A child's record: one household's surname, date of birth and address; ``ids`` say how
    the agency knows it (no NHS number unless given)."""
    return {
        "nhs_number": None,
        "upn": None,
        "la_child_id": None,
        "police_person_reference": None,
        "given_name": given,
        "family_name": "Okonkwo-Test",
        "date_of_birth": BORN,
        "address": {"line1": "4 Synthetic Close", "line2": None, "town": "Testford", "postcode": "LS6 2QT"},
        "confidential_address": None,
        "local_authority_code": "202",
        "school_urn": None,
        "gp_practice_ods": None,
        **ids,
    }


def plan_under_la_id(given: str, la_id: str) -> dict[str, Any]:
    return event(
        "CHILD_PROTECTION_PLAN",
        detail_values={
            "change": "STARTED",
            "responsible_local_authority_code": "202",
            "start_date": date(2026, 10, 1),
        },
        **child(given, la_child_id=la_id),
    )


def attendance(given: str, nhs: str) -> dict[str, Any]:
    return event("EMERGENCY_ATTENDANCE", **child(given, nhs_number=nhs, gp_practice_ods="F83004"))


def decision(audits: list[dict[str, Any]], ev: dict[str, Any], audience: str) -> dict[str, Any]:
    return next(a for a in audits if a["event_id"] == ev["event_id"] and a["audience"] == audience)


def test_flag_under_la_id_joins_attendance_under_nhs_number_until_unlinked(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    nhs = synthetic_nhs_number(RNG)
    plan = plan_under_la_id("Amara", "LA-7781")
    publish(kafka, plan)
    audits = audits_for(kafka, 1)
    first = attendance("Amara", nhs)
    publish(kafka, first)
    audits = audits_for(kafka, 2)
    mash = decision(audits, first, "MASH")
    # Only the index joined them: the plan named the LA's id, the attendance the NHS number.
    assert mash["outcome"] == "SHARE" and mash["organisation"] == "202"
    assert mash["child_identifier"] == "NHS_NUMBER"
    [link] = mash["identity_links"]
    assert (link["rule"], link["band"]) == ("DEMOGRAPHIC_MATCH", "AUTOMATIC")
    records = [
        Codecs(registry_for(kafka)).identity_link.decode(m.value())
        for m in read_topic(kafka, "sg.identity.links.v1", expect=1)
    ]
    assert {records[0]["child_key_a"], records[0]["child_key_b"]} == {"la:202:LA-7781", f"nhs:{nhs}"}
    assert records[0]["agreed_fields"] == ["given_name", "family_name", "date_of_birth", "postcode"]
    assert not any(value in str(records) for value in ("Amara", "Okonkwo", "LS6 2QT", "Synthetic Close"))

    undone = operator.decide(
        kafka, f"nhs:{nhs}", "la:202:LA-7781", linked=False, reason="different child", operator="op1"
    )
    assert [s["event_id"] for s in undone.shares if s["audience"] == "MASH"] == [first["event_id"]]
    assert not undone.still_linked
    wait_for(lambda: running_filter.service.counts["identity_links"] >= 2)
    second = attendance("Amara", nhs)
    publish(kafka, second)
    audits = audits_for(kafka, 3)
    after = decision(audits, second, "MASH")
    assert after["outcome"] == "WITHHOLD" and after["identity_links"] is None
    assert len(read_topic(kafka, "sg.identity.links.v1", expect=2)) == 2  # the unlinked pair is not relinked


def test_twins_with_one_birthday_and_address_are_queued_not_linked(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    plan = plan_under_la_id("Tobi", "LA-9001")
    publish(kafka, plan)
    audits_for(kafka, 1)
    twin = attendance("Kemi", synthetic_nhs_number(RNG))
    publish(kafka, twin)
    audits = audits_for(kafka, 2)
    assert decision(audits, twin, "MASH")["outcome"] == "WITHHOLD"  # the plan is the other twin's
    [queued] = operator.review(kafka, "202")
    assert queued.state == "CANDIDATE" and queued.band == "REVIEW"
    assert "given_name" not in queued.agreed_fields and "date_of_birth" in queued.agreed_fields
    # What the operator sees: identifiers, weight, the names of the fields that agreed; no demographics.
    done = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "identity", "review", "--la", "202"],
        env=sgb_env(kafka), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    shown = done.stdout
    assert queued.link_id in shown and "1 candidate(s) waiting for review for 202." in shown
    assert not any(value in shown for value in ("Tobi", "Kemi", "Okonkwo", "LS6", "2016"))


def test_consent_under_a_upn_covers_a_school_event_under_the_nhs_number_once_linked(
    kafka: Settings, running_filter: RunningFilter
) -> None:
    nhs, upn = synthetic_nhs_number(RNG), "A202300012345"
    from schemas.identifiers import upn_check_letter

    upn = upn_check_letter(upn[1:]) + upn[1:]
    record = {
        "consent_id": "c-upn-1", "nhs_number": None, "la_child_id": None, "local_authority_code": None,
        "upn": upn, "audience": "FAMILY_HELP", "purpose": "FAMILY_HELP", "state": "GIVEN",
        "given_by": "PARENT", "recorded_at": datetime(2026, 11, 2, tzinfo=UTC), "recorded_by": "100000",
    }  # fmt: skip
    prod = producer(kafka)
    prod.produce(kafka.topic("sg.consent.v1"), key=consent_key(record).encode(),  # type: ignore[union-attr]
                 value=Codecs(registry_for(kafka)).consent.encode(record))  # fmt: skip
    prod.flush(10)
    wait_for(lambda: running_filter.service.counts["consent_records"] >= 1)
    concern = {"school_urn": "100000", "family_name": "Unrelated-Test", "given_name": "Noor"}
    before = event("SCHOOL_SAFEGUARDING_CONCERN", **child("Noor", nhs_number=nhs, **concern))
    publish(kafka, before)
    assert decision(audits_for(kafka, 1), before, "FAMILY_HELP")["consent_state"] == "NO_RECORD"
    linked = event("SCHOOL_SAFEGUARDING_CONCERN", **child("Noor", nhs_number=nhs, upn=upn, **concern))
    publish(kafka, linked)
    family_help = decision(audits_for(kafka, 2), linked, "FAMILY_HELP")
    assert family_help["outcome"] == "SHARE" and family_help["consent_state"] == "GIVEN"
    assert [(x["rule"], x["band"]) for x in family_help["identity_links"]] == [
        ("AGENCY_XREF", "DETERMINISTIC")
    ]
