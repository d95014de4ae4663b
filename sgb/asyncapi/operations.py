"""The operations of the AsyncAPI document (see ``sgb/asyncapi/document.py``).

One operation per (participant, channel, direction): connectors, the consent source, the
filter, hubs and operators, each with its ``action`` from that participant's point of
view, a ``participant:<name>`` tag and, for readers, the consumer group binding.
"""

from __future__ import annotations

from typing import Any

from sgb.asyncapi.common import AGENCIES, _camel, _group, _participant_tags, _pascal, _ref


def _operation(
    action: str,
    channel: str,
    message: str,
    participants: tuple[str, ...],
    title: str,
    description: str,
    bindings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "action": action,
        "channel": _ref("channels", channel),
        "title": title,
        "description": description,
        "tags": _participant_tags(*participants),
        "messages": [_ref("channels", channel, "messages", message)],
    }
    if bindings:
        op["bindings"] = bindings
    return op


def _operations() -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for agency, part in AGENCIES:
        ops[f"{_camel(part)}ConnectorSendsEvents"] = _operation(
            "send",
            f"ingress{_pascal(part)}",
            "safeguardingEvent",
            ("connector",),
            f"The {agency} connector sends its events",
            f"Participant: the {agency} connector (`sgb connector run {part}`). It sends each mapped, "
            "validated event to its agency's ingress topic with an idempotent producer (`acks=all`), keyed "
            "by the child's key, and remembers how far it got in its source so that a restart neither loses "
            "nor re-sends records. Its principal may write no other topic except dead letters.",
        )
    ops["connectorSendsDeadLetters"] = _operation(
        "send",
        "deadLetters",
        "deadLetter",
        ("connector",),
        "A connector sends the records it cannot map",
        "Participant: an agency's connector. It sends a source record it cannot validate or map as a dead "
        "letter (headers `sgb.component`, `sgb.reason`, `sgb.source.name`, `sgb.source.position`) instead "
        "of dropping it.",
    )
    ops["consentSourceSendsConsent"] = _operation(
        "send",
        "consent",
        "consentRecord",
        ("consent-source",),
        "Consent is recorded",
        "Participant: the system where consent is recorded (the local authority's connector). It sends one "
        "ConsentRecord per consent given, refused, withdrawn or not sought, keyed by child, audience and "
        "purpose so that compaction keeps each audience's consent.",
    )
    for agency, part in AGENCIES:
        ops[f"filterReceives{_pascal(part)}Events"] = _operation(
            "receive",
            f"ingress{_pascal(part)}",
            "safeguardingEvent",
            ("filter",),
            f"The filter receives {agency} events",
            "Participant: the filter. All filter processes share one consumer group over every ingress topic "
            "(cooperative-sticky assignment, read_committed); the consumed offsets are committed inside the "
            "transaction that writes the event's deliveries and audit records.",
            _group(
                "The filter's consumer group (`sgb filter run --group`, default `sgb-filter`), shared by "
                "every filter process.",
                default="sgb-filter",
                examples=["sgb-filter"],
            ),
        )
    state_group = _group(
        "`<filter group>-state-<instance>`. Partitions are assigned, not subscribed: every filter process "
        "reads the whole topic (a global table) and keeps its positions in its own state store.",
        examples=["sgb-filter-state-filter-0"],
    )
    ops["filterReceivesConsent"] = _operation(
        "receive",
        "consent",
        "consentRecord",
        ("filter",),
        "The filter receives consent records",
        "Participant: the filter. Every filter process reads the consent topic to its end before deciding "
        "anything, and keeps reading; the newest consent by recorded time is in force.",
        state_group,
    )
    ops["filterReceivesStatus"] = _operation(
        "receive",
        "status",
        "childStatus",
        ("filter",),
        "The filter receives child status",
        "Participant: the filter. Every filter process rebuilds per-child flags and known organisations from "
        "this topic at start and keeps it current.",
        state_group,
    )
    ops["filterReceivesIdentityLinks"] = _operation(
        "receive",
        "identityLinks",
        "identityLink",
        ("filter",),
        "The filter receives identity links",
        "Participant: the filter. Every filter process reads the whole link topic at start and keeps reading, "
        "so all decide against the same linked children.",
        state_group,
    )
    transactional = (
        "inside the filter's Kafka transaction (transactional id `<group>-<instance>`), "
        "together with the consumed offsets"
    )
    ops["filterSendsIdentityLinks"] = _operation(
        "send",
        "identityLinks",
        "identityLink",
        ("filter",),
        "The filter links identifiers on evidence",
        f"Participant: the filter. A link or review candidate an event's evidence makes, {transactional}.",
    )
    ops["operatorSendsIdentityDecisions"] = _operation(
        "send",
        "identityLinks",
        "identityLink",
        ("operator",),
        "An operator links or unlinks identifiers",
        "Participant: an operator running `sgb identity link|unlink --reason` (with the filter's credentials), "
        "after `sgb identity review` has read the candidates.",
    )
    ops["filterSendsStatus"] = _operation(
        "send",
        "status",
        "childStatus",
        ("filter",),
        "The filter sends child status changes",
        f"Participant: the filter. When an event changes a child's flags it sends the new ChildStatus, "
        f"{transactional}.",
    )
    ops["filterSendsShares"] = _operation(
        "send",
        "shares",
        "shareRecord",
        ("filter",),
        "The filter records who received each event",
        f"Participant: the filter. One ShareRecord per decided event (and per correction), {transactional}.",
    )
    ops["filterReceivesShares"] = _operation(
        "receive",
        "shares",
        "shareRecord",
        ("filter",),
        "The filter receives the share ledger",
        "Participant: the filter. Every filter process reads the share ledger with its state, so any process "
        "routes a correction to the original's recipients and skips an event id already decided.",
        state_group,
    )
    ops["filterSendsDeliveries"] = _operation(
        "send",
        "delivery",
        "deliveredEvent",
        ("filter",),
        "The filter sends each granted copy",
        "Participant: the filter. For each audience and organisation a policy rule grants, it sends the "
        f"redacted copy to that organisation's delivery topic {transactional}, keyed by the child's key "
        "pseudonymised for that recipient, with headers `sgb.event_id` and `sgb.policy_version`. A copy "
        "that cannot be redacted or encoded is withheld (`redaction_failed`), never sent unredacted.",
    )
    ops["filterSendsAudit"] = _operation(
        "send",
        "audit",
        "auditRecord",
        ("filter",),
        "The filter sends one audit record per event",
        f"Participant: the filter. Exactly one AuditRecord per event, with exactly one decision per candidate "
        f"audience, share or withhold, keyed by event id, {transactional}.",
    )
    ops["filterSendsDeadLetters"] = _operation(
        "send",
        "deadLetters",
        "deadLetter",
        ("filter",),
        "The filter sends what it cannot decode, validate or evaluate",
        "Participant: the filter. Fail closed: an event it cannot decode, that identifies no child, or that "
        "the engine rejects goes to no one but here, with the original bytes and key and headers "
        f"`sgb.component` (`filter`), `sgb.reason` and `sgb.origin.topic|partition|offset`, {transactional}.",
    )
    ops["hubReceivesDeliveries"] = _operation(
        "receive",
        "delivery",
        "deliveredEvent",
        ("hub",),
        "A hub receives its deliveries",
        "Participant: a safeguarding hub organisation (`sgb hub subscribe <audience> <organisation> --sink "
        "...`). It reads only its own delivery topic with `isolation.level=read_committed`, writes each "
        "event to its sink and commits the offset only after that write. `--since` replays from a time.",
        _group(
            "`sgb-hub-<audience>-<organisation>` by default, one per hub organisation; "
            "`sgb hub subscribe --group` names another.",
            examples=["sgb-hub-school_dsl-100000"],
        ),
    )
    ops["operatorReceivesDeadLetters"] = _operation(
        "receive",
        "deadLetters",
        "deadLetter",
        ("operator",),
        "An operator watches dead letters",
        "Participant: an operator. Reads dead letters (filtering on the headers without decoding), fixes the "
        "cause and re-submits the kept original bytes.",
    )
    ops["operatorMarksReplayed"] = _operation(
        "send",
        "deadLettersReplayed",
        "replayMarker",
        ("operator",),
        "An operator replays dead letters after a fix",
        "Participant: an operator running `sgb dlq replay`. Each re-sent payload and its marker are written "
        "in one transaction, so a dead letter is re-sent at most once.",
    )
    ops["operatorReceivesAudit"] = _operation(
        "receive",
        "audit",
        "auditRecord",
        ("operator",),
        "An operator reads or archives the audit trail",
        "Participant: an operator (or the governance tooling it runs). Reads the audit trail to answer what "
        "was shared with whom and why, and archives it before any change of retention.",
    )
    ops["registerSchemas"] = _operation(
        "send",
        "schemas",
        "schemaRegistration",
        ("connector", "filter", "operator"),
        "Writers register the schemas they write with",
        "Participants: every writer of Avro (connectors and the filter, on first use of a schema) and an "
        "operator (`sgb schemas register`). With the embedded registry each registration is a record here; "
        "registering the same schema again is harmless (same id, same key).",
    )
    ops["lookUpSchemas"] = _operation(
        "receive",
        "schemas",
        "schemaRegistration",
        ("filter", "hub", "operator"),
        "Readers look up a schema id they do not know",
        "Participants: every reader of Avro (the filter, hubs, operators' tools). A reader that meets an "
        "unknown schema id reads this topic from its start to its end.",
        _group("Manual assignment from the start; no offsets are committed.", enum=["sgb-schema-reader"]),
    )
    return ops
