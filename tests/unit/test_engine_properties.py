"""Properties of the engine over generated events, states and policies (hypothesis).

- no delivered copy holds a value in a field whose tags were not all granted;
- no CONFIDENTIAL_ADDRESS value reaches any audience but MASH or POLICE_PPU, and no
  SEXUAL_HEALTH value reaches SCHOOL_DSL, whatever the policy;
- every candidate audience gets exactly one decision;
- ``sgb policy evaluate`` (the event as JSON) and the filter (the event off the wire) give the
  same decisions, or refuse it with the same sentence.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, date, datetime
from typing import Any

import fastavro
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import schemas
from consent.engine import Engine
from consent.exceptions import PolicyError
from consent.explain import _entry as entry
from consent.explain import explain
from consent.policy import Policy, load, parse
from consent.state import ChildState, Consent, Flag
from consent.state_updates import derive
from schemas.exceptions import InvalidEvent
from schemas.identifiers import synthetic_nhs_number, synthetic_upn
from schemas.jsonform import details_branch, to_json
from schemas.topics import load_declaration
from schemas.validation import validate_event
from schemas.vocabulary import RedactionAction, Tag
from schemas.walker import named_types

ENVELOPE = schemas.load("SafeguardingEvent")
NAMED: dict[str, Any] = {}
named_types(ENVELOPE, NAMED)
EVENT_TYPES = NAMED["EventType"]["symbols"]
AUDIENCES = ["MASH", "FAMILY_HELP", "SCHOOL_DSL", "GP", "HEALTH_SAFEGUARDING", "EMERGENCY_CARE", "POLICE_PPU"]
TAGS = [t.value for t in Tag if t is not Tag.METADATA]
TEXT = st.text(alphabet="abcXYZ019 -", min_size=1, max_size=8)
KEY = b"k" * 32
DECLARATION = load_declaration()
ORGANISATIONS = DECLARATION.deliveries.organisations
BASELINE_POLICY = load()


def value_for(node: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy producing values that fastavro would write for the schema node."""
    if isinstance(node, str):
        if node in NAMED:
            return value_for(NAMED[node], depth)
        return {
            "string": TEXT,
            "boolean": st.booleans(),
            "int": st.integers(0, 1000),
            "long": st.integers(0, 10**6),
            "double": st.floats(0, 100),
            "float": st.floats(0, 100),
            "bytes": st.binary(max_size=4),
            "null": st.none(),
        }[node]
    if isinstance(node, list):
        return st.one_of([value_for(b, depth) for b in node])
    kind = node.get("type")
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: value_for(f["type"], depth + 1) for f in node["fields"]})
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        return st.lists(value_for(node["items"], depth + 1), max_size=2 if depth < 3 else 0)
    if kind == "map":
        return st.dictionaries(TEXT, value_for(node["values"], depth + 1), max_size=2)
    if node.get("logicalType") == "date":
        return st.dates(date(2005, 1, 1), date(2026, 11, 1))
    if node.get("logicalType") == "timestamp-millis":
        return st.datetimes(datetime(2025, 1, 1), datetime(2026, 11, 1), timezones=st.just(UTC))
    return value_for(kind, depth)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    fields = {f["name"]: f for f in ENVELOPE["fields"]}
    event = {name: draw(value_for(field["type"])) for name, field in fields.items() if name != "details"}
    event["event_type"] = event_type
    event["details"] = draw(value_for(NAMED[details_branch(event_type)]))
    event["withheld_fields"], event["generalised_fields"] = [], {}
    child = event["child"]
    child["local_authority_code"] = draw(st.sampled_from(["202", "203", None]))
    child["school_urn"] = draw(st.sampled_from(["100000", None]))
    child["gp_practice_ods"] = draw(st.sampled_from(["F83004", None]))
    if event_type == "REFERRAL_OUTCOME":
        event["details"]["referrer_organisation"] = draw(
            st.sampled_from(["100000", "F83004", "QMJ", "metropolitan"])
        )
    return event


@st.composite
def states(draw: st.DrawFn) -> ChildState:
    consents = tuple(
        Consent(
            draw(st.sampled_from(["FAMILY_HELP", "ALL", "MASH"])),
            "FAMILY_HELP",
            draw(st.sampled_from(["GIVEN", "REFUSED", "WITHDRAWN", "NOT_SOUGHT"])),
            "PARENT",
            draw(st.datetimes(datetime(2025, 1, 1), datetime(2026, 11, 1), timezones=st.just(UTC))),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    flag = draw(st.one_of(st.none(), st.builds(Flag, st.booleans(), st.sampled_from(["202", "203"]))))
    return ChildState(
        consents=consents, child_protection_plan=flag, school_urn=draw(st.sampled_from([None, "100000"]))
    )


CONDITIONS = [
    "- risk_in: [SIGNIFICANT_HARM]",
    "- age_under: 10",
    "- flag_active: ANY",
    "- source_agency_not_in: [POLICE]",
    "- consent_state_in: [GIVEN]",
]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    rules = []
    for i in range(draw(st.integers(1, 6))):
        audience = draw(st.sampled_from(AUDIENCES))
        grant = draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=len(TAGS)))
        actions = draw(
            st.dictionaries(
                st.sampled_from(TAGS), st.sampled_from([a.value for a in RedactionAction]), max_size=3
            )
        )
        conditions = draw(st.lists(st.sampled_from(CONDITIONS), unique=True, max_size=2))
        consent = draw(st.booleans())
        rules.append(
            "\n".join(
                [
                    f"  - id: r{i}",
                    "    description: generated",
                    f"    event_types: [{', '.join(draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=4)))}]",
                    f"    audience: {audience}",
                    f"    grant: [{', '.join(grant)}]",
                    "    actions: {" + ", ".join(f"{k}: {v}" for k, v in actions.items()) + "}",
                    "    conditions:"
                    + ("".join(f"\n      {c}" for c in conditions) if conditions else " []"),
                    f"    requires_consent: {str(consent).lower()}",
                    "    purpose: FAMILY_HELP",
                    f"    override_on_significant_harm: {str(draw(st.booleans())).lower()}",
                    "    lawful_basis: PUBLIC_TASK_SAFEGUARDING",
                ]
            )
        )
    text = 'name: generated\nversion: "0"\nrules:\n' + "\n".join(rules) + "\n"
    try:
        return parse(text)
    except PolicyError:
        assume(False)
        raise


def leaves(
    node: Any, value: Any, tags: frozenset[str], path: str, out: list[tuple[str, frozenset[str]]]
) -> None:
    """(path, effective tags) of every leaf of ``value`` that holds something."""
    if value is None or value == [] or value == {}:
        return
    if isinstance(node, str) and node in NAMED:
        node = NAMED[node]
    if isinstance(node, list):
        branches = [b for b in node if b != "null"]
        if len(branches) > 1:  # the details union: find the branch by its fields
            for branch in branches:
                record = NAMED[branch] if isinstance(branch, str) else branch
                if {f["name"] for f in record["fields"]} == set(value):
                    leaves(record, value, tags, path, out)
                    return
            raise AssertionError(f"no branch matches {path}")
        leaves(branches[0], value, tags, path, out)
        return
    if isinstance(node, dict) and node.get("type") == "record":
        for field in node["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            leaves(
                field["type"],
                value.get(field["name"]),
                tags | frozenset(field.get("confluent:tags", ())),
                sub,
                out,
            )
        return
    if isinstance(node, dict) and node.get("type") == "array":
        for item in value:
            leaves(node["items"], item, tags, path + "[]", out)
        return
    out.append((path, tags))


def check(policy: Policy, event: dict[str, Any], state: ChildState) -> None:
    engine = Engine(policy, ENVELOPE, b"k" * 32, lambda a, o: True)
    decisions = engine.decide(event, state)
    assert sorted(d.audience.value for d in decisions) == sorted(a.value for a in policy.audiences)
    rules = {r.id: r for r in policy.rules}
    for decision in decisions:
        if decision.event is None:
            continue
        rule = rules[decision.rule]  # type: ignore[index]
        found: list[tuple[str, frozenset[str]]] = []
        copy = {k: v for k, v in decision.event.items() if k not in ("withheld_fields", "generalised_fields")}
        leaves(ENVELOPE, copy, frozenset(), "", found)
        audience = decision.audience.value
        for path, tags in found:
            if "CONFIDENTIAL_ADDRESS" in tags:
                assert audience in ("MASH", "POLICE_PPU"), f"{path} reached {audience}"
            if "SEXUAL_HEALTH" in tags:
                assert audience != "SCHOOL_DSL", f"{path} reached SCHOOL_DSL"
            needed = tags - {"METADATA"}
            if path in decision.transformed_fields:
                continue  # masked, generalised or pseudonymised as the rule's action says
            assert needed <= rule.grant, f"{path} tagged {sorted(needed)} reached {audience} under {rule.id}"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(policy=policies(), event=events(), state=states())
def test_generated_policies_never_leak(policy: Policy, event: dict[str, Any], state: ChildState) -> None:
    check(policy, event, state)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events(), state=states())
def test_the_baseline_never_leaks(event: dict[str, Any], state: ChildState) -> None:
    from consent.policy import load

    check(load(), event, state)


# -- evaluate and the filter agree ---------------------------------------------------------------
VALID_NHS = [synthetic_nhs_number(random.Random(seed)) for seed in range(3)]


@st.composite
def wire_events(draw: st.DrawFn) -> dict[str, Any]:
    """Generated events with identifiers that are sometimes valid, sometimes not."""
    event = draw(events())
    child = event["child"]
    child["nhs_number"] = draw(st.sampled_from([None, *VALID_NHS, "9990000001", "999 000 0018"]))
    child["upn"] = draw(st.sampled_from([None, synthetic_upn(random.Random(1), "202"), "A12345678901X"]))
    child["la_child_id"] = draw(st.sampled_from([None, "LA-1", ""]))
    child["police_person_reference"] = draw(st.sampled_from([None, "TP-1"]))
    child["gp_practice_ods"] = draw(st.sampled_from(["F83004", None, "F8300"]))
    for name in ("responsible_local_authority_code", "placement_local_authority_code"):
        if name in event["details"] and event["details"][name] is not None:
            event["details"][name] = draw(st.sampled_from(["202", "203", "20"]))
    return event


def off_the_wire(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the filter reads it: Avro-encoded by a connector and decoded."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schemas.parsed("SafeguardingEvent"), event)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, schemas.parsed("SafeguardingEvent"))  # type: ignore[return-value]


FILTER_ENGINE = Engine(BASELINE_POLICY, ENVELOPE, KEY, lambda a, o: o in ORGANISATIONS.get(str(a), []))


def filter_side(event: dict[str, Any], state: ChildState) -> Any:
    """What the filter does with one decoded event: validate, derive the child's state, decide."""
    try:
        validate_event(event)
    except InvalidEvent as exc:
        return ("refused", str(exc))
    return ("decided", [entry(d) for d in FILTER_ENGINE.decide(event, derive(event, state))])


def evaluate_side(event: dict[str, Any], state: ChildState) -> Any:
    """What ``sgb policy evaluate`` answers for the same event written as JSON."""
    try:
        result = explain(BASELINE_POLICY, json.loads(json.dumps(to_json(event))), state, DECLARATION, KEY)
    except InvalidEvent as exc:
        return ("refused", str(exc))
    return ("decided", result["decisions"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=wire_events(), state=states())
def test_evaluate_and_the_filter_agree_on_every_generated_event(
    event: dict[str, Any], state: ChildState
) -> None:
    decoded = off_the_wire(event)
    assert evaluate_side(decoded, state) == filter_side(decoded, state)
