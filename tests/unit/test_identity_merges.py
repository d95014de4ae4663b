"""A source's merge (HL7 A40) without Kafka: the links it makes in the child index, and that
the engine shares it with no one."""

from __future__ import annotations

import random
from typing import Any

import pytest
from factories import event

import schemas
from connectors.runtime.event_builder import CHILD_FIELDS
from consent.engine import Engine
from consent.explain import explain
from consent.identity import ChildIndex, Link, MatchModel, Resolver
from consent.identity.resolver import MemoryDemographics
from consent.policy import load
from consent.state import ChildState, Flag
from schemas.identifiers import synthetic_nhs_number
from schemas.jsonform import to_json
from schemas.topics import load_declaration
from schemas.validation import InvalidEvent, validate_event
from schemas.vocabulary import Outcome, Reason

NHS_A, NHS_B = (synthetic_nhs_number(random.Random(seed)) for seed in (81, 82))


def merge(*groups: tuple[list[str], list[str]], risk: str = "SIGNIFICANT_HARM") -> dict[str, Any]:
    """An attendance-shaped merge event about the first group's surviving record."""
    ev = event("EMERGENCY_ATTENDANCE", risk=risk)
    ev["child"] = dict.fromkeys(CHILD_FIELDS) | {"nhs_number": groups[0][0][0].removeprefix("nhs:")}
    ev["merges"] = [{"identifiers": ids, "merged_identifiers": merged} for ids, merged in groups]
    return ev


def resolver() -> Resolver:
    return Resolver(ChildIndex(), MemoryDemographics(), MatchModel.load(), load().identity)


def test_every_group_of_a_merge_links_its_records_as_a_hospital_merge() -> None:
    r = resolver()
    made = r.observe(
        merge(
            ([f"nhs:{NHS_A}"], ["lpi:RXX:H1", "lpi:RXX:H2"]),
            (["lpi:RXX:H9", "lpi:RXX:H7"], [f"nhs:{NHS_B}"]),
        )
    )
    rules = {(link.a, link.b): link.rule for link in made}
    assert rules == {
        tuple(sorted((f"nhs:{NHS_A}", "lpi:RXX:H1"))): "HOSPITAL_MERGE",
        tuple(sorted((f"nhs:{NHS_A}", "lpi:RXX:H2"))): "HOSPITAL_MERGE",
        tuple(sorted(("lpi:RXX:H9", "lpi:RXX:H7"))): "AGENCY_XREF",
        tuple(sorted(("lpi:RXX:H9", f"nhs:{NHS_B}"))): "HOSPITAL_MERGE",
    }
    assert all(link.band == "DETERMINISTIC" and link.state == "LINKED" for link in made)
    assert r.resolve("lpi:RXX:H2").members == {f"nhs:{NHS_A}", "lpi:RXX:H1", "lpi:RXX:H2"}
    assert r.resolve("lpi:RXX:H7").members == {"lpi:RXX:H9", "lpi:RXX:H7", f"nhs:{NHS_B}"}


def test_a_merge_never_relinks_a_pair_an_operator_unlinked() -> None:
    r = resolver()
    r.index.apply(
        Link.between(f"nhs:{NHS_A}", "lpi:RXX:H1", state="UNLINKED", rule="OPERATOR", band="CONFIRMED")
    )
    assert [link for link in r.observe(merge(([f"nhs:{NHS_A}"], ["lpi:RXX:H1"])))] == []
    assert r.resolve(f"nhs:{NHS_A}").members == {f"nhs:{NHS_A}"}


def test_the_engine_shares_a_merge_with_no_one_whatever_its_risk_or_the_childs_flags() -> None:
    engine = Engine(load(), schemas.load("SafeguardingEvent"), b"k" * 32, lambda audience, org: True)
    ev = merge(([f"nhs:{NHS_A}"], ["lpi:RXX:H1"]))
    state = ChildState(
        child_protection_plan=Flag(True, "202"), gp_practice_ods="F83004", local_authority_code="202"
    )
    decisions = engine.decide(ev, state)
    assert {d.audience for d in decisions} == set(load().audiences)
    assert all(
        (d.outcome, d.reason, d.rule, d.lawful_basis, d.event)
        == (Outcome.WITHHOLD, Reason.NO_RULE, None, None, None)
        for d in decisions
    )
    ordinary = {d.outcome for d in engine.decide({**ev, "merges": None}, state)}
    assert Outcome.SHARE in ordinary  # the same event without merges is shared: the merge is what stops it


def test_a_merge_with_an_invalid_identifier_is_refused_naming_the_field_not_the_value() -> None:
    bad = NHS_B[:-1] + str((int(NHS_B[-1]) + 1) % 10)
    with pytest.raises(InvalidEvent) as caught:
        validate_event(merge(([f"nhs:{NHS_A}"], [f"nhs:{bad}"])))
    assert "merges[0].merged_identifiers" in str(caught.value) and bad not in str(caught.value)
    validate_event(merge(([f"nhs:{NHS_A}"], [f"nhs:{NHS_B}", "lpi:RXX:H1"])))


def test_a_merge_is_never_a_correction() -> None:
    ev = merge(([f"nhs:{NHS_A}"], ["lpi:RXX:H1"]))
    with pytest.raises(InvalidEvent, match="merges is set on a correction"):
        validate_event(ev | {"correction": {"kind": "AMENDED", "corrects_event_id": "e0"}})
    with pytest.raises(InvalidEvent, match=r"merges\[0\].merged_identifiers is empty"):
        validate_event(merge(([f"nhs:{NHS_A}"], [])))
    assert resolver().observe(ev | {"merges": [{"identifiers": [], "merged_identifiers": []}]}) is not None


def test_sgb_policy_evaluate_withholds_a_merge_as_the_filter_does() -> None:
    out = explain(
        load(),
        to_json(merge(([f"nhs:{NHS_A}"], ["lpi:RXX:H1"]))),
        ChildState(),
        load_declaration(),
        b"k" * 32,
    )
    assert {(d["outcome"], d["reason"], d["rule"]) for d in out["decisions"]} == {
        ("WITHHOLD", "no_rule", None)
    }
    assert len(out["decisions"]) == len(load().audiences)
