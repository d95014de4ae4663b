"""``sgb demo``: what the demo prints, from what it collected (no Kafka here): the mix of
simulated events by audience, the decisions table, and one event as each recipient got it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Echo = Callable[[str], None]


def print_mix(echo: Echo, mix: list[dict[str, Any]], audits: list[dict[str, Any]]) -> None:
    ids = {e["event_id"]: e["event_type"] for e in mix}
    table: dict[str, dict[str, int]] = {}
    for audit in audits:
        event_type = ids.get(audit["event_id"])
        if event_type is None:
            continue
        row = table.setdefault(event_type, {})
        column = audit["audience"] if audit["outcome"] == "SHARE" else "withheld"
        row[column] = row.get(column, 0) + 1
    columns = [
        "MASH",
        "FAMILY_HELP",
        "SCHOOL_DSL",
        "GP",
        "HEALTH_SAFEGUARDING",
        "EMERGENCY_CARE",
        "POLICE_PPU",
        "withheld",
    ]
    short = ["MASH", "FAM_HELP", "SCHOOL", "GP", "HEALTH_SG", "EMERG", "POLICE", "withheld"]
    echo("")
    echo(f"The mix: copies shared per audience, by event type ({len(mix)} events, {len(mix) * 7} decisions):")
    echo(f"  {'event type':<28}" + "".join(f"{c:>10}" for c in short))
    for event_type in sorted(table):
        row = table[event_type]
        echo(f"  {event_type:<28}" + "".join(f"{row.get(c, 0):>10}" for c in columns))


def print_tables(echo: Echo, events: list[dict[str, Any]], received: dict[str, Any]) -> None:
    audits = received["audits"]
    names = {e["event_id"]: f"{e['child']['given_name']} {e['child']['family_name']}" for e in events}
    echo("")
    echo("Decisions (one line per event and audience; each event's decisions travel as one audit record):")
    header = f"  {'child':<16} {'audience':<20} {'organisation':<13} {'outcome':<9} {'reason':<24} rule"
    echo(header)
    echo("  " + "-" * (len(header) - 2))
    for audit in sorted(audits, key=lambda a: (names[a["event_id"]], a["audience"])):
        echo(
            f"  {names[audit['event_id']]:<16} {audit['audience']:<20} {audit['organisation'] or '-':<13} "
            f"{audit['outcome']:<9} {audit['reason'] or 'granted':<24} {audit['rule'] or '-'}"
        )
    echo("")
    echo("What arrived, per delivery topic:")
    for topic, copies in sorted(received["deliveries"].items()):
        echo(f"  {topic}: {len(copies)} event(s)")
    first = events[0]["event_id"]
    shown = [(t, c) for t, copies in received["deliveries"].items() for c in copies if c["event_id"] == first]
    echo("")
    echo(f"One event ({names[first]}), as each recipient received it:")
    for topic, copy in sorted(shown):
        echo(f"  {topic}")
        for line in _describe(copy):
            echo(f"      {line}")


def _describe(copy: dict[str, Any]) -> list[str]:
    child, details = copy["child"], copy["details"]
    shown = {
        "name": f"{child['given_name']} {child['family_name']}" if child.get("given_name") else None,
        "date of birth": child.get("date_of_birth"),
        "NHS number": child.get("nhs_number"),
        "address": child["address"]["postcode"] if child.get("address") else None,
        "incident at": details.get("incident_at"),
        "child present": details.get("child_present"),
        "offences": ", ".join(details.get("offence_types") or []) or None,
        "adults involved": len(copy.get("related_people") or []) or None,
        "narrative": copy.get("narrative"),
        "police contact": (copy["source"].get("contact") or {}).get("reference"),
    }
    lines = [f"{k}: {v}" for k, v in shown.items() if v is not None]
    withheld = copy.get("withheld_fields") or []
    lines.append(f"withheld by policy: {', '.join(withheld) if withheld else 'nothing'}")
    return lines
