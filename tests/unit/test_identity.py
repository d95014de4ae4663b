"""The child index without Kafka: evidence links, demographic matching, twins, the state of a
linked child, the thresholds in the policy, and the demographics sealed at rest."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from factories import event

from consent.exceptions import PolicyError
from consent.filter.identity import SealedDemographics, erase_demographics, identity_store
from consent.identity import ChildIndex, Link, MatchModel, Resolver, demographics_of, linked_state
from consent.identity.resolver import MemoryDemographics
from consent.policy import BASELINE, load, parse
from consent.state import ChildState, Consent, Flag
from schemas.child_keys import child_identifiers, child_key
from schemas.validation import InvalidEvent, validate_event

NHS_A, NHS_B = "9990000018", "9990000026"


def record(given: str, **ids: Any) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": "Adeyemi-Test",
        "date_of_birth": date(2017, 4, 9),
        "address": {"postcode": "LS6 2QT"},
        "local_authority_code": "202",
        **ids,
    }


def resolver() -> Resolver:
    return Resolver(ChildIndex(), MemoryDemographics(), MatchModel.load(), load().identity)


def observe(r: Resolver, n: int, child: dict[str, Any]) -> list[Link]:
    return r.observe({"event_id": f"e{n}", "child": child})


def test_the_same_child_under_two_agencies_ids_is_linked_automatically_on_demographics() -> None:
    r = resolver()
    observe(r, 1, record("Oliver", la_child_id="LA-1"))
    [link] = observe(
        r, 2, record("Ollie", nhs_number=NHS_A) | {"date_of_birth": date(2017, 9, 4)}
    )  # nickname, swap
    assert (link.state, link.rule, link.band) == ("LINKED", "DEMOGRAPHIC_MATCH", "AUTOMATIC")
    assert r.resolve(f"nhs:{NHS_A}").members == {f"nhs:{NHS_A}", "la:202:LA-1"}


def test_twins_with_one_birthday_and_address_are_queued_not_linked() -> None:
    r = resolver()
    observe(r, 1, record("Tobi", la_child_id="LA-1"))
    [link] = observe(r, 2, record("Kemi", nhs_number=NHS_A))
    assert (link.state, link.band) == ("CANDIDATE", "REVIEW")
    assert "given_name" not in link.agreed_fields and r.resolve(f"nhs:{NHS_A}").relied == ()


def test_two_nhs_numbers_are_never_one_child_by_demographics_alone() -> None:
    r = resolver()
    observe(r, 1, record("Oliver", nhs_number=NHS_A))
    [link] = observe(r, 2, record("Oliver", nhs_number=NHS_B))
    assert link.state == "CANDIDATE"


def test_an_agencys_cross_reference_links_and_an_operators_unlink_is_never_undone_by_evidence() -> None:
    r = resolver()
    child = record("Noor", nhs_number=NHS_A, upn="A202300012345", la_child_id="LA-9")
    assert child_identifiers(child) == (f"nhs:{NHS_A}", "la:202:LA-9", "upn:A202300012345")
    made = observe(r, 1, child)
    assert {(link.rule, link.band) for link in made} == {("AGENCY_XREF", "DETERMINISTIC")} and len(made) == 2
    upn = next(link for link in made if "upn:A202300012345" in (link.a, link.b))
    r.index.apply(upn.superseded("UNLINKED", decided_by="op", reason="wrong pupil"))
    assert observe(r, 2, child | {"given_name": "Nour"}) == []
    assert r.resolve(f"nhs:{NHS_A}").members == {f"nhs:{NHS_A}", "la:202:LA-9"}


def test_a_linked_child_sees_consent_and_an_active_flag_kept_under_its_other_identifiers() -> None:
    given = Consent("FAMILY_HELP", "FAMILY_HELP", "GIVEN", "PARENT", datetime(2026, 11, 2, tzinfo=UTC))
    own = ChildState(gp_practice_ods="F83004")
    other = ChildState(consents=(given,), child_protection_plan=Flag(True, "202"), school_urn="100000")
    seen = linked_state(own, [other])
    assert seen.consent_state("FAMILY_HELP", "FAMILY_HELP") == "GIVEN"  # type: ignore[arg-type]
    assert seen.active_flag("ANY") == Flag(True, "202")
    assert (seen.gp_practice_ods, seen.school_urn) == ("F83004", "100000")


def test_thresholds_are_in_the_policy_and_checked() -> None:
    text = BASELINE.read_text()
    assert load().identity.automatic_link > load().identity.review
    with pytest.raises(PolicyError, match=r"identity\.review"):
        parse(re.sub(r"(?m)^  review: .*$", "  review: 59.0", text))


def test_a_hospital_patient_without_an_nhs_number_is_keyed_by_its_local_patient_id() -> None:
    ev = event("EMERGENCY_ATTENDANCE", nhs_number=None, police_person_reference=None,
               local_patient_id="MRN0042", local_patient_id_issuer="RJ1",
               linked_identifiers=[f"nhs:{NHS_A}"])  # fmt: skip
    validate_event(ev)
    assert child_key(ev["child"]) == "lpi:RJ1:MRN0042"
    assert child_identifiers(ev["child"]) == ("lpi:RJ1:MRN0042", f"nhs:{NHS_A}")
    with pytest.raises(InvalidEvent, match="linked_identifiers"):
        validate_event(event("EMERGENCY_ATTENDANCE", linked_identifiers=["nhs:1234567890"]))


def test_demographics_are_sealed_at_rest_and_erased_with_the_child(tmp_path: Path) -> None:
    path = identity_store(tmp_path / "filter" / "g.one.db")
    store = SealedDemographics(path, b"k" * 32, b"b" * 32)
    demo = demographics_of(record("Oluwaseun"))
    assert demo is not None
    store.put("la:202:LA-1", demo)
    store.commit()
    assert store.get("la:202:LA-1") == demo and store.unchanged("la:202:LA-1", demo)
    assert store.lookup(demo.blocks()) == {"la:202:LA-1"}
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in path.parent.glob("*-wal"))
    assert b"oluwaseun" not in raw.lower() and b"2017-04-09" not in raw and b"LS62QT" not in raw
    store.close()
    assert erase_demographics(tmp_path, ["la:202:LA-1"]) == 1
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM blocks").fetchone()[0]
    assert rows == 0
