"""The inbox page: a server-rendered list of what arrived for one hub, newest first.

Starlette with Jinja2 templates (autoescape on: every value from an event is escaped).
No JavaScript: the page refreshes itself with a meta tag. Responses carry a strict
content security policy and ``Cache-Control: no-store``, since they hold personal data.
The page has no login of its own: it listens on loopback by default and is meant to sit
behind the organisation's authenticating proxy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from broker.probes import Health
from sgb.inbox import view
from sgb.inbox.store import InboxStore, StoredDecision, StoredDelivery

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
AUDIENCE_WORDS = {
    "MASH": "Multi-agency safeguarding hub (MASH)",
    "FAMILY_HELP": "Family help team",
    "SCHOOL_DSL": "School designated safeguarding lead",
    "GP": "GP practice",
    "HEALTH_SAFEGUARDING": "Health safeguarding team",
    "EMERGENCY_CARE": "Emergency care",
    "POLICE_PPU": "Police public protection unit",
}


def templates() -> Environment:
    """The page templates, with autoescape on for every HTML template."""
    return Environment(
        loader=PackageLoader("sgb.inbox", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        auto_reload=False,
    )


def create_app(
    store: InboxStore,
    audience: str,
    organisation: str,
    *,
    health: Health | None = None,
    rules: Mapping[tuple[str, str], str] | None = None,
    refresh: int = 30,
    limit: int = 200,
) -> Starlette:
    """The inbox application for one hub.

    Args:
        store: the hub's store (deliveries and its audit decisions).
        audience: the hub's audience.
        organisation: the hub's organisation code.
        health: served at ``/livez`` and ``/readyz`` when given.
        rules: rule descriptions by (policy version, rule id), shown beside a decision.
        refresh: seconds between automatic reloads of the list; 0 turns it off.
        limit: most events on the list.
    """
    env = templates()
    hub = {
        "audience": audience,
        "organisation": organisation,
        "audience_words": AUDIENCE_WORDS.get(audience, audience),
    }
    descriptions = dict(rules or {})

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = env.get_template(name).render(hub=hub, **context)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def event_view(found: StoredDelivery, decision: StoredDecision | None) -> view.EventView:
        shown = None
        if decision is not None:
            shown = view.decision_view(
                decision.outcome,
                decision.rule,
                decision.lawful_basis,
                decision.consent_state,
                decision.policy_version,
                decision.decided_at,
                descriptions.get((decision.policy_version, decision.rule or "")),
            )
        return view.build(found.event, found.withheld_fields, found.delivered_at, shown)

    def inbox(request: Request) -> Response:
        found = store.recent(limit)
        decisions = store.decisions([d.event_id for d in found], audience, organisation)
        ready, said = health.ready() if health is not None else (True, {})
        # A reader that stopped is not "catching up": the page must say it is out of date.
        stopped = said.get("checks", {}).get("readers") is False
        return render(
            "inbox.html",
            events=[event_view(d, decisions.get(d.event_id)) for d in found],
            total=store.count(),
            withheld_counts=store.withheld_counts(audience, organisation),
            ready=ready,
            stopped=stopped,
            refresh=refresh or None,
        )

    def event(request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        found = store.get(event_id)
        if found is None:
            return render("missing.html", status=404, refresh=None)
        decision = store.decisions([event_id], audience, organisation).get(event_id)
        return render("event.html", ev=event_view(found, decision), refresh=None)

    def probe(check: str) -> Any:
        def endpoint(request: Request) -> Response:
            if health is None:
                return Response(
                    json.dumps({"status": "ok"}), media_type="application/json", headers=SECURITY_HEADERS
                )
            ok, body = health.live() if check == "live" else health.ready()
            body["status"] = "ok" if ok else "failing"
            return Response(
                json.dumps(body),
                status_code=200 if ok else 503,
                media_type="application/json",
                headers=SECURITY_HEADERS,
            )

        return endpoint

    def metrics(request: Request) -> Response:
        return Response(
            generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )

    return Starlette(
        routes=[
            Route("/", inbox),
            Route("/events/{event_id}", event),
            Route("/livez", probe("live")),
            Route("/readyz", probe("ready")),
            Route("/metrics", metrics),
        ]
    )


def rule_descriptions(policy_path: Any = None) -> dict[tuple[str, str], str]:
    """Rule descriptions of a policy file (the shipped baseline by default), by (version, rule id)."""
    from consent import policy as policy_module

    policy = policy_module.load(policy_path or policy_module.BASELINE)
    return {(policy.version_id, rule.id): " ".join(rule.description.split()) for rule in policy.rules}
