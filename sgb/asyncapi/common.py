"""Shared pieces of the AsyncAPI document (see ``sgb/asyncapi/document.py``).

The constants that name sgb's topics, participants, audiences and keys, and the small
helpers every part of the document is built with: ``$ref`` building, name casing, Kafka
channel/message/operation bindings, participant tags and the onboarded recipients.
"""

from __future__ import annotations

from typing import Any

from schemas.loader import load
from schemas.topics import AGENCIES as AGENCY_NAMES
from schemas.topics import (
    DELIVERY_PREFIX,
    TopicDeclaration,
    TopicSpec,
    agency_part,
)

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro"
KAFKA_BINDING = "0.5.0"
NAMESPACE = "uk.sgb"

#: Agencies in POLICY.md order, with their ingress topic's middle part.
AGENCIES = tuple((agency, agency_part(agency)) for agency in AGENCY_NAMES)
DELIVERY_ADDRESS = DELIVERY_PREFIX + "{audience}.{organisation}.v1"

#: Who each audience is and which organisation code names an instance (POLICY.md).
AUDIENCE_ORGANISATION = {
    "MASH": (
        "the child's local authority code",
        "multi-agency safeguarding hub / children's services front door",
    ),
    "FAMILY_HELP": ("the child's local authority code", "family help team"),
    "SCHOOL_DSL": ("the child's school URN", "the school's designated safeguarding lead"),
    "GP": ("the child's GP practice ODS code", "the child's general practice"),
    "HEALTH_SAFEGUARDING": (
        "the integrated care board code for the child's local authority",
        "named/designated safeguarding professionals, health visitors, school nurses",
    ),
    "EMERGENCY_CARE": ("`national`", "emergency departments' flag view"),
    "POLICE_PPU": ("the police force code for the child's local authority", "police public protection unit"),
}

PARTICIPANTS = {
    "connector": "An agency's connector, deployed beside the agency's own system (hospital integration "
    "engine, police records export, school safeguarding log, LA case system). It may write only "
    "its own agency's ingress topic (and dead letters).",
    "consent-source": "Where consent for voluntary support is recorded (for example the local authority's "
    "case system or its family help service, or the synthetic simulator in development). "
    "It publishes ConsentRecords.",
    "filter": "The consent-and-role filter (`sgb filter run`): one consumer group over every ingress topic, "
    "consume-transform-produce in Kafka transactions. The only participant that reads ingress and "
    "writes deliveries and audit.",
    "hub": "A safeguarding hub organisation (`sgb hub subscribe <audience> <organisation>`): reads only its "
    "own delivery topic.",
    "operator": "Whoever runs the cluster and the filter: watches dead letters, keeps and reads the audit "
    "trail, registers schemas.",
}

KEY_DESCRIPTIONS = {
    "ChildKey": (
        "The child's key, which keeps one child's events in order on one partition: `nhs:<NHS "
        "number>` when the NHS number is known, else `la:<local authority code>:<LA child id>`, "
        "else `police:<police person reference>`, else `upn:<UPN>`, else `lpi:<ODS code>:<local patient id>` "
        "(schemas/child_keys.py). An event that "
        "identifies no child is never produced; the filter dead-letters one that arrives."
    ),
    "PseudonymisedChildKey": (
        "The child's key pseudonymised for this recipient: `pseud-` and 16 base32 "
        "characters of HMAC-SHA256 keyed with the filter's pseudonymisation secret "
        "over `<AUDIENCE>:<organisation>` and the child key. Stable, so one child's "
        "deliveries stay in order and can be grouped by the hub; different for every "
        "recipient and not reversible by it."
    ),
    "EventId": "The event id (a UUID) the decision is about, so that all decisions on one event share a "
    "partition and stay in order.",
    "DeadLetterKey": (
        "The key of the record that failed, when it had one (the filter keeps the ingress "
        "message's child key); absent for a connector's source record that could not be "
        "mapped."
    ),
    "RegistrationKey": "`<subject>:<schema id>`, so that compaction keeps one registration of each schema.",
    "DeadLetterPosition": "`<partition>:<offset>` of the dead letter on `sg.dlq.v1`, so each is marked once.",
    "CheckpointKey": "`<connector name>/<file id>`, so that compaction keeps each file's newest checkpoint.",
    "LinkId": "The link id: 24 hex characters of SHA-256 over the pair of child keys, so that compaction keeps "
    "the newest record of each pair.",
}


# -- helpers ----------------------------------------------------------------------------------
def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)}


def _camel(snake: str) -> str:
    parts = snake.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def _pascal(snake: str) -> str:
    return "".join(p.title() for p in snake.lower().split("_"))


def _config_value(name: str, value: str) -> Any:
    if name == "cleanup.policy":
        return [part.strip() for part in value.split(",") if part.strip()]
    try:
        return int(value)
    except ValueError:
        return value


def _channel_binding(spec: TopicSpec) -> dict[str, Any]:
    binding: dict[str, Any] = {"partitions": spec.partitions}
    if spec.replication_factor:
        binding["replicas"] = spec.replication_factor
    if spec.config:
        binding["topicConfiguration"] = {k: _config_value(k, v) for k, v in spec.config.items()}
    binding["bindingVersion"] = KAFKA_BINDING
    return binding


def _avro_payload(name: str) -> dict[str, Any]:
    return {"schemaFormat": AVRO_FORMAT, "schema": load(name)}


def _message_binding(key: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": _ref("components", "schemas", key),
            "schemaIdLocation": "payload",
            "schemaIdPayloadEncoding": "confluent",
            "schemaLookupStrategy": "RecordNameStrategy",
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _tag_key(participant: str) -> str:
    """The component key of a participant's tag (component keys allow no ``:``)."""
    return "participant" + _pascal(participant.replace("-", "_"))


def _participant_tags(*names: str) -> list[dict[str, str]]:
    return [_ref("components", "tags", _tag_key(name)) for name in names]


def _group(description: str, **schema: Any) -> dict[str, Any]:
    return {
        "kafka": {
            "groupId": {"type": "string", **schema, "description": description},
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _onboarded(declaration: TopicDeclaration) -> list[tuple[str, str]]:
    """Onboarded (audience, organisation) pairs in declaration order."""
    organisations = declaration.deliveries.organisations
    return [(audience, org) for audience, orgs in organisations.items() for org in orgs]
