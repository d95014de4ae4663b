"""``sgb simulate``: synthetic children and events, pure (no Kafka)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import schemas
import sgb.simulate.run  # noqa: F401  (configures logging outside the CLI runner's streams)
from broker.wire.codecs import Codecs
from schemas.identifiers import is_valid_nhs_number, is_valid_upn
from schemas.jsonform import event_from_json, record_from_json, to_json
from schemas.reference import icb_for, police_force_for
from sgb.cli.root import Context
from sgb.cli.simulate import simulate
from sgb.simulate.events import (
    EVENT_AGENCY,
    EVENT_TYPES,
    Population,
    SimulationError,
    Simulator,
)
from sgb.simulate.progress import LogProgress
from sgb.simulate.run import TokenBucket, run_simulation

IDENTITY = (
    "nhs_number",
    "upn",
    "la_child_id",
    "police_person_reference",
    "given_name",
    "family_name",
    "date_of_birth",
    "ethnicity",
    "address",
    "school_urn",
    "gp_practice_ods",
    "local_authority_code",
)
SCHOOL_OF = {"202": "100000", "203": "100001", "213": "100002"}
GP_OF = {"202": "F83004", "203": "F83019", "213": "E87024"}


class MemoryRegistry:
    """A schema registry in a dictionary: ``register`` and ``schema`` as the real ones."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        schema_id = self._ids.setdefault(json.dumps(schema, sort_keys=True), len(self._ids) + 1)
        self._schemas[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        return self._schemas[schema_id]


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(12, seed=42)


@pytest.fixture(scope="module")
def events(population: Population) -> list[dict[str, Any]]:
    return list(Simulator(population, seed=42).events(1500))


@pytest.fixture(scope="module")
def codecs() -> Codecs:
    return Codecs(MemoryRegistry())


# ------------------------------------------------------------------------------- population


def test_same_seed_same_children_and_events() -> None:
    first = list(Simulator(Population(15, seed=7), seed=7).events(300))
    again = list(Simulator(Population(15, seed=7), seed=7).events(300))
    assert first == again
    other = list(Simulator(Population(15, seed=8), seed=8).events(300))
    assert {e["event_id"] for e in other}.isdisjoint({e["event_id"] for e in first})
    consents = list(Simulator(Population(15, seed=7), seed=7).consent_records(20))
    assert consents == list(Simulator(Population(15, seed=7), seed=7).consent_records(20))


def test_children_are_synthetic_and_consistent_with_their_authority(population: Population) -> None:
    big = Population(400, seed=3)
    nhs = [c.nhs_number for c in big]
    assert len(set(nhs)) == len(nhs)
    for child in big:
        assert child.nhs_number.startswith("999") and is_valid_nhs_number(child.nhs_number)
        age = child.age_on(big.today)
        assert 0 <= age <= 17
        assert child.local_authority_code in ("202", "203", "213")
        assert child.gp_practice_ods == GP_OF[child.local_authority_code]
        if age >= 4:
            assert child.school_urn == SCHOOL_OF[child.local_authority_code]
            assert child.upn is not None and is_valid_upn(child.upn)
            assert child.upn[1:4] == child.local_authority_code
        else:
            assert child.school_urn is None and child.upn is None
        assert child.household and all(a.date_of_birth < child.date_of_birth for a in child.household)
    assert {c.local_authority_code for c in population} == {"202", "203", "213"}


def test_organisations_are_parameters() -> None:
    pop = Population(
        30, seed=1, la_codes=["330"], schools=["123456"], gp_practices=["M85001"], police_force=None
    )
    assert {c.local_authority_code for c in pop} == {"330"}
    assert {c.gp_practice_ods for c in pop} == {"M85001"}
    police = list(Simulator(pop, seed=1).events(40, types=["DOMESTIC_ABUSE_INCIDENT"]))
    assert {e["source"]["organisation"] for e in police} == {police_force_for("330")}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"size": 0}, "between 1 and"),
        ({"size": 5, "la_codes": ["999"]}, "not in the reference table"),
        ({"size": 5, "la_codes": ["20"]}, "three digits"),
        ({"size": 5, "schools": ["12345"]}, "six digits"),
        ({"size": 5, "gp_practices": ["123456"]}, "letter followed by five digits"),
        ({"size": 5, "schools": {"202": ["100000"]}}, "No school is given for local authority 203"),
    ],
)
def test_bad_population_arguments_say_what_is_wrong(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(SimulationError, match=words):
        Population(**kwargs)


# ----------------------------------------------------------------------------------- events


def test_every_type_is_generated_from_its_agency_and_encodes(
    events: list[dict[str, Any]], codecs: Codecs
) -> None:
    assert set(Counter(e["event_type"] for e in events)) == set(EVENT_TYPES)
    for event in events:
        assert event["source"]["agency"] == EVENT_AGENCY[event["event_type"]]
        assert codecs.event.decode(codecs.event.encode(event)) == event


def test_each_type_alone_and_every_field_present(codecs: Codecs) -> None:
    schema = schemas.load("SafeguardingEvent")
    branches = {b["name"]: b for b in next(f for f in schema["fields"] if f["name"] == "details")["type"]}
    child = next(f for f in schema["fields"] if f["name"] == "child")
    child_fields = [f["name"] for f in child["type"]["fields"]]
    simulator = Simulator(Population(10, seed=5), seed=5)
    for event_type in EVENT_TYPES:
        batch = list(simulator.events(20, types=[event_type]))
        assert {e["event_type"] for e in batch} == {event_type}
        for event in batch:
            assert list(event) == [f["name"] for f in schema["fields"]]
            assert list(event["child"]) == child_fields
            branch = "".join(part.capitalize() for part in event_type.split("_"))
            assert list(event["details"]) == [f["name"] for f in branches[branch]["fields"]]
            codecs.event.encode(event)


def test_times_have_a_zone_and_dates_are_dates(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert event["occurred_at"].tzinfo is UTC and event["recorded_at"] >= event["occurred_at"]
        assert type(event["child"]["date_of_birth"]) is date
    occurred = [e["occurred_at"] for e in events]
    assert occurred == sorted(occurred)
    plans = [e for e in events if e["event_type"] == "CHILD_PROTECTION_PLAN"]
    assert all(type(p["details"]["start_date"]) is date for p in plans)


def test_the_same_child_is_the_same_in_every_agency(
    events: list[dict[str, Any]], population: Population
) -> None:
    by_child: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_child[event["child"]["nhs_number"]].append(event)
    assert set(by_child) <= {c.nhs_number for c in population}
    agencies_seen = []
    for nhs, seen in by_child.items():
        identities = {json.dumps([e["child"][k] for k in IDENTITY], default=str) for e in seen}
        assert len(identities) == 1, nhs
        agencies_seen.append({e["source"]["agency"] for e in seen})
    assert any(len(a) == 4 for a in agencies_seen)
    # The confidential address is in police and local-authority events only.
    assert all(
        e["child"]["confidential_address"] is None
        for e in events
        if e["source"]["agency"] in ("HEALTH", "EDUCATION")
    )


def test_school_events_come_from_the_childs_school(events: list[dict[str, Any]]) -> None:
    school = [e for e in events if e["source"]["agency"] == "EDUCATION"]
    assert school and all(e["source"]["organisation"] == e["child"]["school_urn"] for e in school)
    la = [e for e in events if e["source"]["agency"] == "LOCAL_AUTHORITY"]
    assert all(e["source"]["organisation"] == e["child"]["local_authority_code"] for e in la)
    police = [e for e in events if e["source"]["agency"] == "POLICE"]
    assert {e["source"]["organisation"] for e in police} == {"metropolitan"}


@pytest.mark.parametrize(
    ("event_type", "begin", "end"),
    [
        ("CHILD_PROTECTION_PLAN", "STARTED", "ENDED"),
        ("LOOKED_AFTER_STATUS", "STARTED", "ENDED"),
        ("FAMILY_HELP_CASE", "OPENED", "CLOSED"),
        ("MISSING_EPISODE", "REPORTED", "RETURNED"),
    ],
)
def test_nothing_ends_before_it_started(
    events: list[dict[str, Any]], event_type: str, begin: str, end: str
) -> None:
    timeline: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["event_type"] == event_type:
            timeline[event["child"]["nhs_number"]].append(event)
    ended = 0
    for seen in timeline.values():
        changes = [e["details"]["change"] for e in seen]
        assert changes == [begin if i % 2 == 0 else end for i in range(len(changes))]
        for opening, closing in zip(seen[::2], seen[1::2], strict=False):
            ended += 1
            assert closing["occurred_at"] > opening["occurred_at"]
            if event_type in ("CHILD_PROTECTION_PLAN", "LOOKED_AFTER_STATUS"):
                assert closing["details"]["start_date"] == opening["details"]["start_date"]
                assert closing["details"]["end_date"] >= closing["details"]["start_date"]
                assert opening["details"]["end_date"] is None
    assert ended > 0


def test_referral_outcomes_name_the_childs_own_referrer(events: list[dict[str, Any]]) -> None:
    outcomes = [e for e in events if e["event_type"] == "REFERRAL_OUTCOME"]
    audiences = Counter()
    for event in outcomes:
        child, details = event["child"], event["details"]
        la = child["local_authority_code"]
        expected = {
            "SCHOOL_DSL": child["school_urn"],
            "GP": child["gp_practice_ods"],
            "HEALTH_SAFEGUARDING": icb_for(la),
            "POLICE_PPU": police_force_for(la),
        }
        assert details["referrer_organisation"] == expected[details["referrer_audience"]]
        assert details["referrer_organisation"]
        audiences[details["referrer_audience"]] += 1
    assert set(audiences) == {"SCHOOL_DSL", "GP", "HEALTH_SAFEGUARDING", "POLICE_PPU"}


def test_risk_mix_people_and_narrative(events: list[dict[str, Any]]) -> None:
    risks = Counter(e["risk"] for e in events)
    assert 0.05 < risks["SIGNIFICANT_HARM"] / len(events) < 0.3
    assert risks["NEEDS_SUPPORT"] > risks["SIGNIFICANT_HARM"] and risks["INFORMATION"] > 0
    abuse = [e for e in events if e["event_type"] == "DOMESTIC_ABUSE_INCIDENT"]
    assert all({p["role"] for p in e["related_people"]} >= {"VICTIM", "ALLEGED_PERPETRATOR"} for e in abuse)
    assert all(e["narrative"].startswith("[Synthetic]") for e in events)
    assert all(e["source"]["system"] == "sgb-simulate" for e in events)
    discussions = [e for e in events if e["event_type"] == "STRATEGY_DISCUSSION"]
    assert all(e["details"]["meeting_at"] > e["occurred_at"] for e in discussions)


def test_attendance_is_flagged_when_the_child_has_a_plan(events: list[dict[str, Any]]) -> None:
    attendances = [e for e in events if e["event_type"] == "EMERGENCY_ATTENDANCE"]
    assert any(e["details"]["safeguarding_flag_seen"] for e in attendances)
    assert not all(e["details"]["safeguarding_flag_seen"] for e in attendances)


def test_json_shape_round_trips(events: list[dict[str, Any]]) -> None:
    for event in events[:300]:
        line = json.dumps(to_json(event))
        assert event_from_json(json.loads(line)) == event


def test_types_and_mix_choose_what_is_generated() -> None:
    simulator = Simulator(Population(10, seed=2), seed=2)
    mixed = Counter(
        e["event_type"]
        for e in simulator.events(
            400, types=["ATTENDANCE_ALERT", "REFERRAL_OUTCOME"], mix={"REFERRAL_OUTCOME": 0}
        )
    )
    assert set(mixed) == {"ATTENDANCE_ALERT"}
    with pytest.raises(SimulationError, match="Unknown event type 'NOT_A_TYPE'"):
        simulator.events(5, types=["NOT_A_TYPE"])
    with pytest.raises(SimulationError, match="weight"):
        simulator.events(5, mix={"ATTENDANCE_ALERT": -1})


def test_school_events_need_a_child_at_school() -> None:
    baby = next(p for p in (Population(1, seed=s) for s in range(200)) if p[0].school_urn is None)
    simulator = Simulator(baby, seed=1)
    with pytest.raises(SimulationError, match="No child in the population is at school"):
        simulator.events(5, types=["ATTENDANCE_ALERT"])
    assert not {e["source"]["agency"] for e in simulator.events(50)} & {"EDUCATION"}


# ---------------------------------------------------------------------------------- consent


def test_consent_records(codecs: Codecs, population: Population) -> None:
    records = list(Simulator(population, seed=9).consent_records(300))
    assert Counter(r["state"] for r in records).keys() == {"GIVEN", "REFUSED", "WITHDRAWN", "NOT_SOUGHT"}
    last: dict[tuple[str, str], str] = {}
    for record in records:
        assert record["purpose"] == "FAMILY_HELP" and record["audience"] in ("FAMILY_HELP", "ALL")
        assert record["nhs_number"] in {c.nhs_number for c in population}
        if record["state"] == "WITHDRAWN":
            assert last.get((record["nhs_number"], record["audience"])) == "GIVEN"
        last[(record["nhs_number"], record["audience"])] = record["state"]
        assert codecs.consent.decode(codecs.consent.encode(record)) == record
        assert record_from_json("ConsentRecord", json.loads(json.dumps(to_json(record)))) == record
    assert [r["recorded_at"] for r in records] == sorted(r["recorded_at"] for r in records)


# ------------------------------------------------------------------------------- rate, CLI


def test_token_bucket_paces_records() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(31):
        bucket.take()
    assert now[0] == pytest.approx(3.0)
    now[0] += 60  # a slow start-up: without a reset the bucket would allow a burst
    bucket.reset()
    began = now[0]
    for _ in range(11):
        bucket.take()
    assert now[0] - began == pytest.approx(1.0)
    unlimited = TokenBucket(None, sleep=sleep)
    before = len(slept)
    for _ in range(100):
        unlimited.take()
    assert len(slept) == before
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(SimulationError, match="positive number of events per second"):
            TokenBucket(bad)


@pytest.mark.parametrize("rate", ["0", "-5", "abc", "nan"])
def test_bad_rate_is_one_clear_sentence(rate: str) -> None:
    result = CliRunner().invoke(simulate, ["--rate", rate, "--output", "x.jsonl"], obj=Context(None))
    assert result.exit_code == 2
    assert "--rate" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--types", "DOMESTIC_ABUSE_INCIDENT,NOPE"], "NOPE is not an event type"),
        (["--children", "0"], "at least 1"),
        (["--count", "-1"], "at least 0"),
        (["--count", "0"], "Nothing to simulate"),
        (["--start", "2026-11-20T08:00"], "needs a time zone"),
    ],
)
def test_bad_options_are_one_clear_sentence(args: list[str], words: str) -> None:
    result = CliRunner().invoke(simulate, [*args, "--output", "x.jsonl"], obj=Context(None))
    assert result.exit_code == 2 and words in result.output


def test_output_file_is_read_by_policy_evaluate(tmp_path: Path) -> None:
    from consent.explain import explain
    from consent.policy import load
    from consent.state import ChildState
    from schemas.topics import load_declaration

    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(
        simulate,
        [
            "--count",
            "120",
            "--seed",
            "4",
            "--consents",
            "6",
            "--start",
            "2026-11-20T08:00:00Z",
            "--output",
            str(out),
        ],
        obj=Context(None),
    )
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("Simulated 120 event(s) about 20 children (seed 4)")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 120
    assert len((tmp_path / "events.consents.jsonl").read_text().splitlines()) == 6
    # The same seed and start give the same file.
    again = tmp_path / "again.jsonl"
    CliRunner().invoke(
        simulate,
        ["--count", "120", "--seed", "4", "--start", "2026-11-20T08:00:00Z", "--output", str(again)],
        obj=Context(None),
    )
    assert again.read_text() == out.read_text()
    policy, onboarded = load(), load_declaration()
    explained = set()
    for line in lines:
        event = json.loads(line)
        if event["event_type"] in explained:
            continue
        explained.add(event["event_type"])
        decisions = explain(policy, event, ChildState(), onboarded, b"k" * 32)["decisions"]
        assert decisions and not any(d["reason"] == "recipient_not_onboarded" for d in decisions)


def test_run_reports_counts(tmp_path: Path) -> None:
    logged = LogProgress(300, every=0.0)
    report = run_simulation(
        None,
        count=300,
        children=8,
        seed=1,
        rate=None,
        output=tmp_path / "e.jsonl",
        start=datetime(2026, 11, 1, tzinfo=UTC),
        progress=logged,
    )
    assert report.events == 300 and sum(report.by_type.values()) == 300 and logged.done == 300
    assert sum(report.by_agency.values()) == 300
    line = report.line()
    assert "by type:" in line and "by agency:" in line and "records/s" in line and "\n" not in line
    with pytest.raises(SimulationError, match="Nothing to simulate"):
        run_simulation(None, count=0, children=3, output=tmp_path / "n.jsonl")
