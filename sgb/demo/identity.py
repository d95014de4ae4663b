"""The demo's one child across agencies: a join only the child index makes possible.

The local authority records a child protection plan under its own child id (no NHS number);
later the emergency department records an attendance under the child's NHS number. Nothing
the two records share is an identifier, so before the index the MASH never heard of the
attendance (flow F2). The filter matches their demographics (score above the policy's upper
threshold), links the two identifiers on the link topic, and the MASH receives it; the
audit says which link it relied on.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from broker.settings import Settings
from schemas.identifiers import synthetic_nhs_number

Echo = Callable[[str], None]

_CHILD = {
    "upn": None,
    "police_person_reference": None,
    "given_name": "Dev",
    "family_name": "Linkwell",
    "date_of_birth": date(2019, 5, 17),
    "ethnicity": None,
    "address": {"line1": "9 Demo Crescent", "line2": None, "town": "Testford", "postcode": "NW1 6XE"},
    "confidential_address": None,
    "school_urn": None,
    "local_authority_code": "202",
}


def _event(
    event_type: str,
    agency: str,
    organisation: str,
    child: dict[str, Any],
    details: dict[str, Any],
    at: datetime,
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": at,
        "recorded_at": at + timedelta(minutes=5),
        "source": {"agency": agency, "organisation": organisation, "organisation_name": f"{organisation} (demo)",
                   "system": "sgb-demo", "record_id": None, "contact": None},
        "risk": "INFORMATION" if agency == "HEALTH" else "SIGNIFICANT_HARM",
        "child": {**_CHILD, **child},
        "details": details,
    }  # fmt: skip


def index_join_events(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    """The plan under the LA's id (no NHS number), then the attendance under the NHS number."""
    plan_at, attended_at = now - timedelta(days=3), now - timedelta(hours=2)
    contact = {"team": "Children's services front door (demo)", "phone": "020 7946 0001", "email": None,
               "reference": "CPP-DEMO-1"}  # fmt: skip
    plan = _event(
        "CHILD_PROTECTION_PLAN", "LOCAL_AUTHORITY", "202",
        {"nhs_number": None, "la_child_id": "DEMO-LA-0077", "gp_practice_ods": None},
        {"change": "STARTED", "start_date": plan_at.date(), "responsible_local_authority_code": "202",
         "responsible_contact": contact},
        plan_at,
    )  # fmt: skip
    attendance = _event(
        "EMERGENCY_ATTENDANCE", "HEALTH", "RAL",
        {"nhs_number": synthetic_nhs_number(rng), "la_child_id": None, "gp_practice_ods": "F83004"},
        {"arrival_at": attended_at, "site_ods_code": "RAL01", "site_name": "Royal Free Hospital ED (demo)"},
        attended_at,
    )  # fmt: skip
    return [plan, attendance]


def publish_index_join(settings: Settings, echo: Echo, rng: random.Random) -> list[dict[str, Any]]:
    """Publish the two events, the attendance once the plan has been decided on."""
    import time

    from connectors.runtime.publisher import EventPublisher

    events = index_join_events(rng, datetime.now(UTC).replace(microsecond=0))
    for agency, event in zip(("LOCAL_AUTHORITY", "HEALTH"), events, strict=True):
        publisher = EventPublisher(settings, agency)
        publisher.publish(event)
        publisher.flush()
        time.sleep(1.5)  # the attendance comes after the plan, as it would in life
    echo(
        "Published a child protection plan under the LA's own child id, then an emergency attendance "
        "under the child's NHS number (no identifier in common)."
    )
    return events


def print_index_join(echo: Echo, events: list[dict[str, Any]], audits: list[dict[str, Any]]) -> None:
    """The table of the join: which identifier each event used and what the MASH received."""
    ids = {e["event_id"]: e["event_type"] for e in events}
    echo("")
    echo(
        "Joins only the child index made possible (plan under the LA's id, attendance under the NHS number):"
    )
    header = f"  {'event':<22} {'identifier used':<16} {'audience':<15} {'outcome':<9} linked by"
    echo(header)
    echo("  " + "-" * (len(header) - 2))
    for audit in audits:
        if audit["event_id"] not in ids or audit["audience"] not in ("MASH", "EMERGENCY_CARE"):
            continue
        links = audit.get("identity_links") or []
        linked = ", ".join(f"{link['rule']} ({link['band']})" for link in links) or "-"
        echo(
            f"  {ids[audit['event_id']]:<22} {audit.get('child_identifier') or '-':<16} {audit['audience']:<15} "
            f"{audit['outcome']:<9} {linked}"
        )
    attendance = events[1]["event_id"]
    joined = any(
        a["event_id"] == attendance and a["audience"] == "MASH" and a["outcome"] == "SHARE" for a in audits
    )
    echo(
        "  The MASH received the attendance: the index linked the two records on their demographics."
        if joined
        else "  The MASH did not receive the attendance: the index found no link (see sgb identity review)."
    )
