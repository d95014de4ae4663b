"""The channels of the AsyncAPI document (see ``sgb/asyncapi/document.py``).

``_channels`` builds one channel per topic sgb uses (ingress per agency, consent, status,
identity links, the share ledger, the parameterised delivery channel, audit, dead letters,
replay markers, schema registrations) from the topic declaration; ``_key_schemas`` builds
the ``components.schemas`` for the record keys those channels carry. The messages on them
are built in ``sgb/asyncapi/messages.py``.
"""

from __future__ import annotations

from typing import Any

from schemas.topics import (
    AUDIENCES,
    AUDIT_TOPIC,
    CHECKPOINTS_TOPIC,
    CONSENT_TOPIC,
    DLQ_TOPIC,
    IDENTITY_LINKS_TOPIC,
    REPLAYED_TOPIC,
    SCHEMAS_TOPIC,
    SHARES_TOPIC,
    STATUS_TOPIC,
    TopicDeclaration,
    TopicSpec,
    ingress_topic,
)
from sgb.asyncapi.common import (
    AGENCIES,
    AUDIENCE_ORGANISATION,
    DELIVERY_ADDRESS,
    KAFKA_BINDING,
    KEY_DESCRIPTIONS,
    NAMESPACE,
    _channel_binding,
    _config_value,
    _onboarded,
    _pascal,
    _ref,
)


def _key_schemas() -> dict[str, Any]:
    return {
        "ChildKey": {
            "type": "string",
            "pattern": "^(nhs|la|police|upn|lpi):.+$",
            "examples": ["nhs:9990000018"],
            "description": KEY_DESCRIPTIONS["ChildKey"],
        },
        "PseudonymisedChildKey": {
            "type": "string",
            "pattern": "^pseud-[a-z2-7]{16}$",
            "description": KEY_DESCRIPTIONS["PseudonymisedChildKey"],
        },
        "EventId": {
            "type": "string",
            "pattern": "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$",
            "description": KEY_DESCRIPTIONS["EventId"],
        },
        "DeadLetterKey": {"type": ["string", "null"], "description": KEY_DESCRIPTIONS["DeadLetterKey"]},
        "DeadLetterPosition": {
            "type": "string",
            "pattern": "^[0-9]+:[0-9]+$",
            "examples": ["2:1042"],
            "description": KEY_DESCRIPTIONS["DeadLetterPosition"],
        },
        "LinkId": {"type": "string", "pattern": "^[0-9a-f]{24}$", "description": KEY_DESCRIPTIONS["LinkId"]},
        "CheckpointKey": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*/[0-9a-f]+$",
            "description": KEY_DESCRIPTIONS["CheckpointKey"],
        },
        "RegistrationKey": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_.]*:[0-9]+$",
            "examples": [f"{NAMESPACE}.SafeguardingEvent:123456789"],
            "description": KEY_DESCRIPTIONS["RegistrationKey"],
        },
    }


def _channels(declaration: TopicDeclaration) -> dict[str, Any]:
    specs = {spec.name: spec for spec in declaration.all_topics()}
    channels: dict[str, Any] = {}

    def declared(name: str) -> TopicSpec:
        try:
            return specs[name]
        except KeyError:
            msg = f"Topic {name} is used by sgb but not declared in the topic declaration."
            raise ValueError(msg) from None

    for agency, part in AGENCIES:
        topic = ingress_topic(agency)
        channels[f"ingress{_pascal(part)}"] = {
            "address": topic,
            "title": f"{agency} ingress",
            "description": f"Events published by the {agency} connector, keyed by the child's key. Only that "
            "connector writes here and only the filter reads.",
            "messages": {"safeguardingEvent": _ref("components", "messages", "SafeguardingEvent")},
            "bindings": {"kafka": _channel_binding(declared(topic))},
        }
    channels["consent"] = {
        "address": CONSENT_TOPIC,
        "title": "Consent",
        "description": "Consent records, compacted, keyed by the child's key. The filter reads the whole "
        "topic into its per-child state before deciding anything.",
        "messages": {"consentRecord": _ref("components", "messages", "ConsentRecord")},
        "bindings": {"kafka": _channel_binding(declared(CONSENT_TOPIC))},
    }
    channels["identityLinks"] = {
        "address": IDENTITY_LINKS_TOPIC,
        "title": "Identity links",
        "description": "Which identifiers are one child (POLICY.md principle 11), compacted, keyed by the link "
        "id; every filter process reads it from the start.",
        "messages": {"identityLink": _ref("components", "messages", "IdentityLink")},
        "bindings": {"kafka": _channel_binding(declared(IDENTITY_LINKS_TOPIC))},
    }
    channels["status"] = {
        "address": STATUS_TOPIC,
        "title": "Child status",
        "description": "Per-child flags (child protection plan, looked after) and known school, GP and local "
        "authority, compacted, keyed by the child's key; the filter's global table.",
        "messages": {"childStatus": _ref("components", "messages", "ChildStatus")},
        "bindings": {"kafka": _channel_binding(declared(STATUS_TOPIC))},
    }
    channels["shares"] = {
        "address": SHARES_TOPIC,
        "title": "Share ledger",
        "description": "Who received each decided event, compacted, keyed by event id; the filter's global "
        "table for routing corrections (POLICY.md principle 10).",
        "messages": {"shareRecord": _ref("components", "messages", "ShareRecord")},
        "bindings": {"kafka": _channel_binding(declared(SHARES_TOPIC))},
    }

    onboarded = _onboarded(declaration)
    audience_lines = [
        f"- `{audience.lower()}`: `{audience}`, {who}; organisation: {org_key}."
        for audience, (org_key, who) in AUDIENCE_ORGANISATION.items()
    ]
    organisation_lines = [
        f"- `{audience}`: {', '.join(f'`{org}`' for org in orgs) or '(none yet)'}"
        for audience, orgs in declaration.deliveries.organisations.items()
    ]
    examples: list[str] = []
    for _, org in onboarded:
        if org not in examples:
            examples.append(org)
    delivery_config = {**declaration.defaults.config, **declaration.deliveries.config}
    delivery = {
        "partitions": declaration.deliveries.partitions,
        "replicas": declaration.defaults.replication_factor,
        "topicConfiguration": {k: _config_value(k, v) for k, v in delivery_config.items()},
        "bindingVersion": KAFKA_BINDING,
    }
    channels["delivery"] = {
        "address": DELIVERY_ADDRESS,
        "title": "Delivery to one recipient organisation",
        "description": "\n".join(
            [
                "One topic per onboarded recipient organisation: the redacted copies the policy grants that "
                "audience and organisation, written only by the filter inside its transactions and read only by "
                "that organisation (read_committed). An organisation without a topic is not onboarded, and the "
                "filter withholds with reason `recipient_not_onboarded`.",
                "",
                "Onboarded now (deploy/topics.yaml):",
                "",
                *[f"- `{DELIVERY_ADDRESS.format(audience=a.lower(), organisation=o)}`" for a, o in onboarded],
            ]
        ),
        "parameters": {
            "audience": {
                "description": "\n".join(["The audience, in lower case (POLICY.md):", "", *audience_lines]),
                "enum": [audience.lower() for audience in AUDIENCES],
                "examples": [audience.lower() for audience in declaration.deliveries.organisations],
            },
            "organisation": {
                "description": "\n".join(
                    [
                        "The recipient organisation's code (letters, digits, `-` or `_`), as the audience "
                        "defines it. Onboarded organisations by audience:",
                        "",
                        *organisation_lines,
                    ]
                ),
                "examples": examples,
            },
        },
        "messages": {"deliveredEvent": _ref("components", "messages", "DeliveredEvent")},
        "bindings": {"kafka": delivery},
    }
    channels["audit"] = {
        "address": AUDIT_TOPIC,
        "title": "Audit decisions",
        "description": "One AuditRecord per event, carrying its decision for every candidate audience, "
        "share or withhold, keyed by event id; older AuditDecision records (one per decision) stay on the "
        "topic. Kept (no retention limit): archive it before changing retention.",
        "messages": {
            "auditRecord": _ref("components", "messages", "AuditRecord"),
            "auditDecision": _ref("components", "messages", "AuditDecision"),
        },
        "bindings": {"kafka": _channel_binding(declared(AUDIT_TOPIC))},
    }
    channels["deadLetters"] = {
        "address": DLQ_TOPIC,
        "title": "Dead letters",
        "description": "What could not be processed, with the reason and origin as headers and in the "
        "record.",
        "messages": {"deadLetter": _ref("components", "messages", "DeadLetter")},
        "bindings": {"kafka": _channel_binding(declared(DLQ_TOPIC))},
    }
    channels["deadLettersReplayed"] = {
        "address": REPLAYED_TOPIC,
        "title": "Dead letters replayed",
        "description": "Which dead letters `sgb dlq replay` has re-sent (compacted, one partition).",
        "messages": {"replayMarker": _ref("components", "messages", "ReplayMarker")},
        "bindings": {"kafka": _channel_binding(declared(REPLAYED_TOPIC))},
    }
    channels["schemas"] = {
        "address": SCHEMAS_TOPIC,
        "title": "Schema registrations",
        "description": "The embedded schema registry's registrations (JSON), compacted, one partition.",
        "messages": {"schemaRegistration": _ref("components", "messages", "SchemaRegistration")},
        "bindings": {"kafka": _channel_binding(declared(SCHEMAS_TOPIC))},
    }
    channels["connectorCheckpoints"] = {
        "address": CHECKPOINTS_TOPIC,
        "title": "File connector checkpoints",
        "description": "Each file connector's committed positions (JSON), compacted.",
        "messages": {"connectorCheckpoint": _ref("components", "messages", "ConnectorCheckpoint")},
        "bindings": {"kafka": _channel_binding(declared(CHECKPOINTS_TOPIC))},
    }
    return channels
