"""The engine that chooses once per combination decides exactly as the one that never shares
a choice (issue 21, item 3), on random events and states, decisions, redacted copies and
audit records alike.

One cached engine lives for the whole test, so each example is decided with choices that
earlier examples (other events, other children) put in its cache: an input the combination
leaves out shows as a difference. The domains are small (ages either side of F1's 5, two
agencies, a few consent states and flags) so that different events share combinations often.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import schemas
from consent.audit import audit_record
from consent.combination import Choices
from consent.engine import Engine
from consent.policy import load
from consent.state import ChildState, Consent, Flag
from schemas.topics import load_declaration
from schemas.vocabulary import Audience, ConsentState, EventType, Risk
from sgb.simulate.events import Population, Simulator

ORGANISATIONS = load_declaration().deliveries.organisations
POLICY = load()
SIMULATED = list(Simulator(Population(300, 5), 5).events(400))
#: Simulated events by type. A third of the draws are of a type with a rule whose conditions
#: read the event (age, agency, referrer), a third of a type with a rule that has conditions or
#: needs consent, each such type as likely as another (EXPLOITATION_CONCERN is rare otherwise).
BY_TYPE: dict[str, list[dict[str, Any]]] = {}
for _event in SIMULATED:
    BY_TYPE.setdefault(_event["event_type"], []).append(_event)
CONDITIONAL = sorted(
    {
        t.value
        for (t, _), rules in POLICY.rules_by_target.items()
        for r in rules
        if r.conditions or r.requires_consent
    }
)
ON_THE_EVENT = sorted(
    {
        t.value
        for (t, _), rules in POLICY.rules_by_target.items()
        for r in rules
        if any(
            c.key
            in ("age_under", "age_at_least", "source_agency_in", "source_agency_not_in", "referrer_audience")
            for c in r.conditions
        )
    }
)
OCCURRED = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
# Either side of F1's "under 5" (the fifth birthday on the day itself and the day after), older,
# and unknown.
BIRTHS = st.sampled_from([None, date(2021, 6, 1), date(2021, 6, 2), date(2023, 1, 1), date(2014, 3, 3)])
AUDIENCE_NAMES = [a.value for a in Audience]


def _engine(combinations: int) -> Engine:
    return Engine(
        POLICY,
        schemas.load("SafeguardingEvent"),
        b"k" * 32,
        lambda audience, org: org in ORGANISATIONS.get(str(audience), []),
        combinations=combinations,
    )


UNCACHED = _engine(0)
CACHED = _engine(4096)


EVENT_INPUTS = ("risk", "agency", "date_of_birth", "organisations", "referrer_audience")


def _maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any], current: Any, fresh: bool) -> Any:
    """A new value for an input: always for a fresh event; for a sibling, only the one input it
    changes (the caller passes fresh=True for that one)."""
    return draw(strategy) if fresh else current


@st.composite
def events(draw: st.DrawFn, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A simulated event with every input the rules can read drawn from a small domain; with
    ``base``, a sibling of it: the same event with some of those inputs drawn again."""
    fresh = base is None
    change = "" if fresh else draw(st.sampled_from(EVENT_INPUTS))
    if base is None:
        kinds = draw(st.sampled_from([ON_THE_EVENT, CONDITIONAL, None]))
        pool = BY_TYPE[draw(st.sampled_from(kinds))] if kinds else SIMULATED
        base = draw(st.sampled_from(pool))
    event = copy.deepcopy(base)
    event["event_id"] = f"e{draw(st.integers(0, 10**9))}"
    event["risk"] = _maybe(
        draw, st.sampled_from([r.value for r in Risk]), event["risk"], fresh or change == "risk"
    )
    agencies = st.sampled_from(["POLICE", "HEALTH", "EDUCATION", "LOCAL_AUTHORITY"])
    event["source"]["agency"] = _maybe(draw, agencies, event["source"]["agency"], fresh or change == "agency")
    event["occurred_at"] = OCCURRED
    child = event["child"]
    for name, strategy in (
        ("date_of_birth", BIRTHS),
        ("local_authority_code", st.sampled_from(["202", "203", None])),
        ("school_urn", st.sampled_from(["100000", "100001", None])),
        ("gp_practice_ods", st.sampled_from(["F83004", None])),
    ):
        changed = change == (name if name == "date_of_birth" else "organisations")
        child[name] = _maybe(draw, strategy, child.get(name), fresh or changed)
    details = event["details"]
    if "referrer_audience" in details:
        referrers = st.sampled_from([*AUDIENCE_NAMES, None])
        details["referrer_audience"] = _maybe(
            draw, referrers, details["referrer_audience"], fresh or change == "referrer_audience"
        )
    if "referrer_organisation" in details:
        organisations = st.sampled_from(["100000", "F83004", "QMJ", None])
        details["referrer_organisation"] = _maybe(
            draw, organisations, details["referrer_organisation"], fresh
        )
    return event


CONSENTS = st.lists(
    st.builds(
        Consent,
        st.sampled_from([*AUDIENCE_NAMES, "ALL"]),
        st.just("FAMILY_HELP"),
        st.sampled_from([c.value for c in ConsentState]),
        st.just("PARENT"),
        st.sampled_from([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)]),
    ),
    max_size=2,
).map(tuple)
FLAGS = st.one_of(st.none(), st.builds(Flag, st.booleans(), st.sampled_from(["202", "203", None])))
STATE_PARTS = {
    "consents": CONSENTS,
    "child_protection_plan": FLAGS,
    "looked_after": FLAGS,
    "school_urn": st.sampled_from([None, "100000"]),
    "gp_practice_ods": st.sampled_from([None, "F83004"]),
    "local_authority_code": st.sampled_from([None, "202"]),
}


@st.composite
def states(draw: st.DrawFn, base: ChildState | None = None) -> ChildState:
    """A child's state; with ``base``, the same state with one part of it drawn again."""
    if base is None:
        return ChildState(**{name: draw(part) for name, part in STATE_PARTS.items()})
    name = draw(st.sampled_from(sorted(STATE_PARTS)))
    return replace(base, **{name: draw(STATE_PARTS[name])})


@st.composite
def families(draw: st.DrawFn) -> list[tuple[dict[str, Any], ChildState]]:
    """An event and state, then siblings that differ from them in a few inputs: siblings
    often fall in one combination, so an input the combination omits shows at once."""
    base, state = draw(events()), draw(states())
    out = [(base, state)]
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            out.append((draw(events(base)), state))
        else:
            out.append((base, draw(states(state))))
    return out


@seed(21)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(families())
def test_the_cached_engine_decides_as_the_uncached_one(
    family: list[tuple[dict[str, Any], ChildState]],
) -> None:
    for cached_engine in (_engine(4096), CACHED):  # this family's choices only; every example's
        for event, state in family:
            cached = cached_engine.decide(event, state)
            uncached = UNCACHED.decide(event, state)
            # Decision equality covers outcome, reason, rule, lawful basis, consent, organisation
            # and its source, removed and transformed fields, and the delivered copy itself.
            assert cached == uncached
            assert audit_record(cached, 1_700_000_000_000) == audit_record(uncached, 1_700_000_000_000)


def test_the_combinations_are_shared_and_bounded() -> None:
    engine = _engine(8)
    for event in SIMULATED[:200]:
        engine.decide(event, ChildState())
    choices = engine._combinations
    assert 0 < len(choices) <= 8
    assert choices.hits > 0  # events of one combination share its choices


def test_clear_forgets_every_combination() -> None:
    """(A reloaded policy gets a new engine, so a new, empty cache: FilterService._maybe_reload_policy.)"""
    engine = _engine(8)
    engine.decide(SIMULATED[0], ChildState())
    assert len(engine._combinations) == 1
    engine._combinations.clear()
    assert len(engine._combinations) == 0


def test_no_cache_when_turned_off() -> None:
    choices = Choices(POLICY, 0)
    assert choices.combination(SIMULATED[0], *_typed(SIMULATED[0]), ChildState()) is None


def test_an_input_that_is_not_a_plain_value_is_decided_without_the_cache() -> None:
    event = copy.deepcopy(SIMULATED[0])
    event["source"]["agency"] = ["POLICE"]
    choices = Choices(POLICY)
    assert choices.combination(event, *_typed(event), ChildState()) is None


def _typed(event: dict[str, Any]) -> tuple[EventType, Risk]:
    return EventType(event["event_type"]), Risk(event["risk"])
