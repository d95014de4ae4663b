"""sgb's Kafka interface as an AsyncAPI 3.0.0 document, generated from the project itself.

Everything in the document comes from what the code uses: the topic declaration
(``deploy/topics.yaml``) gives the channels and their Kafka settings, the Avro catalogue
gives the payloads (inlined, sensitivity tags included, so partners see what each field
is), and the keys, headers and consumer groups are the ones the connectors, the filter
and the hubs use.

AsyncAPI describes one application, and its ``action`` (``send`` / ``receive``) is that
application's point of view. This document describes the whole system instead, so every
operation belongs to one named participant: its ``action`` is from that participant's
point of view, its description says who it is, and it carries a ``participant:<name>``
tag (``participant:connector``, ``participant:filter``, ``participant:hub``, ...).

The generation is pure and deterministic: the same repository gives the same bytes.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from broker.topics import AUDIENCES, TopicDeclaration, TopicSpec, load_declaration
from schemas.loader import load

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro"
KAFKA_BINDING = "0.5.0"
NAMESPACE = "uk.sgb"

#: Agencies in POLICY.md order, with their ingress topic's middle part.
AGENCIES = (("HEALTH", "health"), ("POLICE", "police"), ("EDUCATION", "education"),
            ("LOCAL_AUTHORITY", "local_authority"))
CONSENT_TOPIC = "sg.consent.v1"
STATUS_TOPIC = "sg.status.v1"
AUDIT_TOPIC = "sg.audit.decisions.v1"
DLQ_TOPIC = "sg.dlq.v1"
SCHEMAS_TOPIC = "sg.schemas.v1"
REPLAYED_TOPIC = "sg.dlq.replayed.v1"
DELIVERY_ADDRESS = "sg.deliver.{audience}.{organisation}.v1"

#: Who each audience is and which organisation code names an instance (POLICY.md).
AUDIENCE_ORGANISATION = {
    "MASH": ("the child's local authority code",
             "multi-agency safeguarding hub / children's services front door"),
    "FAMILY_HELP": ("the child's local authority code", "family help team"),
    "SCHOOL_DSL": ("the child's school URN", "the school's designated safeguarding lead"),
    "GP": ("the child's GP practice ODS code", "the child's general practice"),
    "HEALTH_SAFEGUARDING": ("the integrated care board code for the child's local authority",
                            "named/designated safeguarding professionals, health visitors, school nurses"),
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
    "ChildKey": ("The child's key, which keeps one child's events in order on one partition: `nhs:<NHS "
                 "number>` when the NHS number is known, else `la:<local authority code>:<LA child id>`, "
                 "else `police:<police person reference>`, else `upn:<UPN>` (schemas/keys.py). An event that "
                 "identifies no child is never produced; the filter dead-letters one that arrives."),
    "PseudonymisedChildKey": ("The child's key pseudonymised for this recipient: `pseud-` and 16 base32 "
                              "characters of HMAC-SHA256 keyed with the filter's pseudonymisation secret "
                              "over `<AUDIENCE>:<organisation>` and the child key. Stable, so one child's "
                              "deliveries stay in order and can be grouped by the hub; different for every "
                              "recipient and not reversible by it."),
    "EventId": "The event id (a UUID) the decision is about, so that all decisions on one event share a "
               "partition and stay in order.",
    "DeadLetterKey": ("The key of the record that failed, when it had one (the filter keeps the ingress "
                      "message's child key); absent for a connector's source record that could not be "
                      "mapped."),
    "RegistrationKey": "`<subject>:<schema id>`, so that compaction keeps one registration of each schema.",
    "DeadLetterPosition": "`<partition>:<offset>` of the dead letter on `sg.dlq.v1`, so each is marked once.",
}


# -- helpers ----------------------------------------------------------------------------------
def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)}


def _camel(snake: str) -> str:
    parts = snake.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def _pascal(snake: str) -> str:
    return "".join(p.title() for p in snake.lower().split("_"))


def _package_version() -> str:
    try:
        return metadata.version("sgb")
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


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
    return {"kafka": {
        "key": _ref("components", "schemas", key),
        "schemaIdLocation": "payload",
        "schemaIdPayloadEncoding": "confluent",
        "schemaLookupStrategy": "RecordNameStrategy",
        "bindingVersion": KAFKA_BINDING,
    }}


def _tag_key(participant: str) -> str:
    """The component key of a participant's tag (component keys allow no ``:``)."""
    return "participant" + _pascal(participant.replace("-", "_"))


def _participant_tags(*names: str) -> list[dict[str, str]]:
    return [_ref("components", "tags", _tag_key(name)) for name in names]


def _group(description: str, **schema: Any) -> dict[str, Any]:
    return {"kafka": {"groupId": {"type": "string", **schema, "description": description},
                      "bindingVersion": KAFKA_BINDING}}


def _onboarded(declaration: TopicDeclaration) -> list[tuple[str, str]]:
    """Onboarded (audience, organisation) pairs in declaration order."""
    organisations = declaration.deliveries.organisations
    return [(audience, org) for audience, orgs in organisations.items() for org in orgs]


# -- the document -----------------------------------------------------------------------------
def _info(declaration: TopicDeclaration) -> dict[str, Any]:
    description = "\n".join([
        "The Kafka interface of **sgb**, the safeguarding event broker for England: health, police, "
        "education and local-authority children's services publish what happens to a child as events; a "
        "consent-and-role filter decides who may see which part of each event; each safeguarding hub "
        "subscribes to exactly what it is entitled to, and every decision is on record.",
        "",
        "## Data flow",
        "",
        "1. An agency's **connector** maps each source record to a `SafeguardingEvent`, Avro-encodes it and "
        "produces it to its agency's ingress topic `sg.ingress.<agency>.v1`, keyed by the child's key so "
        "that one child's events stay in order. A record it cannot map goes to `sg.dlq.v1` with the reason.",
        "2. The **filter** consumes every ingress topic as one consumer group. It keeps per-child state "
        "(consent from `sg.consent.v1`, child-protection / looked-after flags and known school, GP and local "
        "authority from `sg.status.v1`, both compacted), evaluates the policy for each candidate audience, "
        "writes a redacted copy to `sg.deliver.<audience>.<organisation>.v1` for each audience granted it, "
        "and one `AuditDecision` per (event, audience) pair, share or withhold, to `sg.audit.decisions.v1`. "
        "Deliveries, audit records, status changes, dead letters and the consumed offsets commit in one "
        "Kafka transaction: read with `isolation.level=read_committed`.",
        "3. A **hub** consumes its own delivery topic (read_committed), writes each event where its people "
        "work and acknowledges (commits) only after that write.",
        "",
        "## The consent-and-role filter",
        "",
        "Default deny: an audience receives nothing unless a policy rule grants it, and a grant names the "
        "sensitivity tags it may see. Every field of the delivered copy whose tags are not all granted is "
        "redacted (removed, masked, generalised or pseudonymised) and named in `withheld_fields` / "
        "`generalised_fields`. Support a family takes up voluntarily needs consent `GIVEN`; when an event's "
        "risk is `SIGNIFICANT_HARM` safeguarding comes first and consent is not needed. "
        "`CONFIDENTIAL_ADDRESS` goes only to `MASH` and `POLICE_PPU`; `SEXUAL_HEALTH` never goes to "
        "`SCHOOL_DSL`. An event that cannot be decoded, validated or evaluated goes to no one but the "
        "dead-letter topic. A recipient that is unknown or not onboarded is withheld, not guessed.",
        "",
        "## On the wire",
        "",
        "Values are Avro binary in the Confluent framing: magic byte `0`, the 4-byte big-endian schema id, "
        "then the Avro body. The id resolves through the schema registry: any Confluent-compatible registry "
        "configured by URL (`SGB_SCHEMA_REGISTRY_URL`), or the embedded registry whose registrations are "
        f"records on `{SCHEMAS_TOPIC}`. The subject of each schema is its record's full name (for example "
        f"`{NAMESPACE}.SafeguardingEvent`). Every leaf field of every schema carries its sensitivity tags "
        "(`confluent:tags`: METADATA, IDENTIFIER, NAME, DATE_OF_BIRTH, CONTACT, CONFIDENTIAL_ADDRESS, "
        "HEALTH, MENTAL_HEALTH, SEXUAL_HEALTH, CRIMINAL_OFFENCE, THIRD_PARTY, SPECIAL_CATEGORY, NARRATIVE, "
        "CASE_DETAIL); the payloads below are the schemas as registered, tags included.",
        "",
        "Topic names here are logical; a deployment may put a prefix in front of every one "
        "(`SGB_TOPIC_PREFIX`).",
        "",
        "## How to read the operations",
        "",
        "AsyncAPI describes one application; this document describes the whole system. Each operation "
        "therefore belongs to one participant, named by its `participant:<name>` tag and in its description, "
        "and its `action` (`send` or `receive`) is from that participant's point of view.",
    ])
    return {
        "title": "sgb: safeguarding event broker",
        "version": _package_version(),
        "description": description,
        "license": {"name": "MIT"},
        "tags": _participant_tags(*PARTICIPANTS),
    }


def _servers() -> dict[str, Any]:
    return {
        "kafka": {
            "host": "127.0.0.1:9092",
            "protocol": "kafka",
            "title": "Local development broker",
            "description": "The single-broker Apache Kafka (KRaft) that `sgb kafka start` runs on loopback "
                           "for development, tests and `sgb demo`; plaintext, no authentication. Schemas are "
                           f"registered in the embedded registry (records on `{SCHEMAS_TOPIC}`).",
            "bindings": {"kafka": {"schemaRegistryVendor": "confluent", "bindingVersion": KAFKA_BINDING}},
        },
        "production": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "title": "Production cluster (placeholder)",
            "description": "A production cluster (for example Strimzi on Kubernetes, replication factor 3, "
                           "`min.insync.replicas` 2). Every client connects over TLS and authenticates as "
                           "its own principal, one per deployed connector, per hub organisation and for the "
                           "filter, either with SASL/SCRAM-SHA-512 or with a client certificate (mutual "
                           "TLS). ACLs let a connector write only its ingress topic and a hub read only its "
                           "own delivery topics; only the filter reads ingress and writes deliveries and "
                           "audit. Schemas live in a Confluent-compatible schema registry.",
            "variables": {
                "bootstrap": {
                    "default": "kafka-bootstrap.sgb.example.invalid:9093",
                    "description": "The cluster's bootstrap address (host:port) that the operator publishes.",
                },
            },
            "security": [_ref("components", "securitySchemes", "saslScram"),
                         _ref("components", "securitySchemes", "mutualTls")],
            "bindings": {"kafka": {"schemaRegistryUrl": "https://schema-registry.sgb.example.invalid",
                                   "schemaRegistryVendor": "confluent", "bindingVersion": KAFKA_BINDING}},
        },
    }


def _messages() -> dict[str, Any]:
    delivered_headers = {
        "type": "object",
        "description": "Kafka record headers (UTF-8 strings) set by the filter on every delivery.",
        "required": ["sgb.event_id", "sgb.policy_version"],
        "properties": {
            "sgb.event_id": {"type": "string", "description": "The event id, the same as the payload's "
                             "`event_id` and the matching audit record's key."},
            "sgb.policy_version": {"type": "string", "description": "The version of the policy that granted "
                                   "this delivery (as in the audit record)."},
        },
    }
    dead_letter_headers = {
        "type": "object",
        "description": "Kafka record headers (UTF-8 strings) so that tools can filter dead letters without "
                       "decoding the value. The origin headers are present when known: a Kafka position for "
                       "the filter, a source position for a connector.",
        "required": ["sgb.component", "sgb.reason"],
        "properties": {
            "sgb.reason": {"type": "string", "description": "Why the record could not be processed: one "
                           "sentence about what is wrong, never the values involved."},
            "sgb.origin.topic": {"type": "string",
                                 "description": "The topic the failed record was read from."},
            "sgb.origin.partition": {"type": "string", "pattern": "^[0-9]+$",
                                     "description": "Its partition (decimal)."},
            "sgb.origin.offset": {"type": "string", "pattern": "^[0-9]+$",
                                  "description": "Its offset (decimal)."},
            "sgb.source.name": {"type": "string", "description": "The connector's source (for example a file "
                                "name) the record came from."},
            "sgb.source.position": {"type": "string", "description": "Where in that source (for example a "
                                    "line number)."},
            "sgb.component": {"type": "string", "description": "The component that gave up on the record: "
                              "`filter`, or the connector's name."},
        },
    }
    return {
        "SafeguardingEvent": {
            "name": "SafeguardingEvent",
            "title": "Safeguarding event (as the agency published it)",
            "summary": "What happened to a child, as an agency's connector recorded it.",
            "description": "The envelope with one details branch per event type. On an ingress topic the "
                           "event is complete; it is never read by anyone but the filter.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("SafeguardingEvent"),
            "bindings": _message_binding("ChildKey"),
        },
        "DeliveredEvent": {
            "name": "DeliveredEvent",
            "title": "Safeguarding event (the copy one recipient may see)",
            "summary": "The same record, redacted for one audience and organisation.",
            "description": "The same `SafeguardingEvent` schema: the fields the recipient may not see are "
                           "set to null (or emptied) and named in `withheld_fields`; transformed ones "
                           "(masked, generalised, pseudonymised) are named in `generalised_fields`. "
                           "Structural fields tagged METADATA are always kept.",
            "contentType": AVRO_CONTENT_TYPE,
            "headers": delivered_headers,
            "payload": _avro_payload("SafeguardingEvent"),
            "correlationId": {"description": "Links the delivery to its audit record (keyed by event id).",
                              "location": "$message.header#/sgb.event_id"},
            "bindings": _message_binding("PseudonymisedChildKey"),
        },
        "ConsentRecord": {
            "name": "ConsentRecord",
            "title": "Consent record",
            "summary": "A child's consent for one audience (or ALL) and purpose.",
            "description": "The newest record by `recorded_at` is in force, whatever order records arrive "
                           "in.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("ConsentRecord"),
            "bindings": _message_binding("ChildKey"),
        },
        "ChildStatus": {
            "name": "ChildStatus",
            "title": "Child status",
            "summary": "The flags and known organisations the filter holds for one child.",
            "description": "Written by the filter when an event changes a child's flags; read back by every "
                           "filter process as a global table.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("ChildStatus"),
            "bindings": _message_binding("ChildKey"),
        },
        "AuditDecision": {
            "name": "AuditDecision",
            "title": "Audit decision",
            "summary": "One decision for one (event, candidate audience) pair, share or withhold.",
            "description": "Names the fields removed or transformed, never their values. Audit is data, not "
                           "logging: this topic is the record of every decision and is kept.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("AuditDecision"),
            "correlationId": {"description": "The event decided on.",
                              "location": "$message.payload#/event_id"},
            "bindings": _message_binding("EventId"),
        },
        "DeadLetter": {
            "name": "DeadLetter",
            "title": "Dead letter",
            "summary": "A record that could not be processed, with its reason and origin.",
            "description": "Nothing is silently dropped: the original bytes are kept so that the record can "
                           "be re-submitted after a fix.",
            "contentType": AVRO_CONTENT_TYPE,
            "headers": dead_letter_headers,
            "payload": _avro_payload("DeadLetter"),
            "bindings": _message_binding("DeadLetterKey"),
        },
        "ReplayMarker": {
            "name": "ReplayMarker",
            "title": "Dead letter replayed",
            "summary": "Marks one dead letter as re-sent by `sgb dlq replay`, so it is never re-sent twice.",
            "description": "Written in the same transaction as the re-sent record. Keyed by the dead letter's "
                           "`partition:offset` on `sg.dlq.v1`; compacted.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["replayed_at", "dead_letter", "sha256"],
                "properties": {
                    "replayed_at": {"type": "string", "format": "date-time",
                                    "description": "When the dead letter was re-sent."},
                    "origin": {"type": ["string", "null"], "description": "The topic it was re-sent to."},
                    "dead_letter": {"type": "string",
                                    "description": "Its position: `sg.dlq.v1[partition]@offset`."},
                    "sha256": {"type": "string", "description": "SHA-256 of the re-sent payload."},
                },
            },
            "bindings": {"kafka": {"key": _ref("components", "schemas", "DeadLetterPosition"),
                                   "bindingVersion": KAFKA_BINDING}},
        },
        "SchemaRegistration": {
            "name": "SchemaRegistration",
            "title": "Schema registration (embedded registry)",
            "summary": "One schema registered under one subject, as JSON.",
            "description": "The embedded registry's storage. A schema's id is derived from its content (the "
                           "first 31 bits of SHA-256 of its canonical JSON), so every process agrees on it "
                           "without coordination; a reader that meets an unknown id reads this topic from "
                           "the start. Not used when a Confluent-compatible registry is configured.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["subject", "id", "schema"],
                "properties": {
                    "subject": {"type": "string", "description": "The record's full name, e.g. "
                                f"`{NAMESPACE}.SafeguardingEvent`."},
                    "id": {"type": "integer", "minimum": 1, "maximum": 2147483647,
                           "description": "The schema id written in the Confluent framing."},
                    "schema": {"type": "object", "description": "The self-contained Avro schema."},
                },
            },
            "bindings": {"kafka": {"key": _ref("components", "schemas", "RegistrationKey"),
                                   "bindingVersion": KAFKA_BINDING}},
        },
    }


def _key_schemas() -> dict[str, Any]:
    return {
        "ChildKey": {"type": "string", "pattern": "^(nhs|la|police|upn):.+$",
                     "examples": ["nhs:9990000018"], "description": KEY_DESCRIPTIONS["ChildKey"]},
        "PseudonymisedChildKey": {"type": "string", "pattern": "^pseud-[a-z2-7]{16}$",
                                  "description": KEY_DESCRIPTIONS["PseudonymisedChildKey"]},
        "EventId": {"type": "string",
                    "pattern": "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$",
                    "description": KEY_DESCRIPTIONS["EventId"]},
        "DeadLetterKey": {"type": ["string", "null"], "description": KEY_DESCRIPTIONS["DeadLetterKey"]},
        "DeadLetterPosition": {"type": "string", "pattern": "^[0-9]+:[0-9]+$", "examples": ["2:1042"],
                               "description": KEY_DESCRIPTIONS["DeadLetterPosition"]},
        "RegistrationKey": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.]*:[0-9]+$",
                            "examples": [f"{NAMESPACE}.SafeguardingEvent:123456789"],
                            "description": KEY_DESCRIPTIONS["RegistrationKey"]},
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
        topic = f"sg.ingress.{part}.v1"
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
    channels["status"] = {
        "address": STATUS_TOPIC,
        "title": "Child status",
        "description": "Per-child flags (child protection plan, looked after) and known school, GP and local "
                       "authority, compacted, keyed by the child's key; the filter's global table.",
        "messages": {"childStatus": _ref("components", "messages", "ChildStatus")},
        "bindings": {"kafka": _channel_binding(declared(STATUS_TOPIC))},
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
        "description": "\n".join([
            "One topic per onboarded recipient organisation: the redacted copies the policy grants that "
            "audience and organisation, written only by the filter inside its transactions and read only by "
            "that organisation (read_committed). An organisation without a topic is not onboarded, and the "
            "filter withholds with reason `recipient_not_onboarded`.",
            "",
            "Onboarded now (deploy/topics.yaml):",
            "",
            *[f"- `{DELIVERY_ADDRESS.format(audience=a.lower(), organisation=o)}`" for a, o in onboarded],
        ]),
        "parameters": {
            "audience": {
                "description": "\n".join(["The audience, in lower case (POLICY.md):", "", *audience_lines]),
                "enum": [audience.lower() for audience in AUDIENCES],
                "examples": [audience.lower() for audience in declaration.deliveries.organisations],
            },
            "organisation": {
                "description": "\n".join([
                    "The recipient organisation's code (letters, digits, `-` or `_`), as the audience "
                    "defines it. Onboarded organisations by audience:", "", *organisation_lines]),
                "examples": examples,
            },
        },
        "messages": {"deliveredEvent": _ref("components", "messages", "DeliveredEvent")},
        "bindings": {"kafka": delivery},
    }
    channels["audit"] = {
        "address": AUDIT_TOPIC,
        "title": "Audit decisions",
        "description": "One record per (event, candidate audience) decision, share or withhold, keyed by "
                       "event id. Kept (no retention limit): archive it before changing retention.",
        "messages": {"auditDecision": _ref("components", "messages", "AuditDecision")},
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
    return channels


def _operation(action: str, channel: str, message: str, participants: tuple[str, ...], title: str,
               description: str, bindings: dict[str, Any] | None = None) -> dict[str, Any]:
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
            "send", f"ingress{_pascal(part)}", "safeguardingEvent", ("connector",),
            f"The {agency} connector sends its events",
            f"Participant: the {agency} connector (`sgb connector run {part}`). It sends each mapped, "
            "validated event to its agency's ingress topic with an idempotent producer (`acks=all`), keyed "
            "by the child's key, and remembers how far it got in its source so that a restart neither loses "
            "nor re-sends records. Its principal may write no other topic except dead letters.")
    ops["connectorSendsDeadLetters"] = _operation(
        "send", "deadLetters", "deadLetter", ("connector",),
        "A connector sends the records it cannot map",
        "Participant: an agency's connector. It sends a source record it cannot validate or map as a dead "
        "letter (headers `sgb.component`, `sgb.reason`, `sgb.source.name`, `sgb.source.position`) instead "
        "of dropping it.")
    ops["consentSourceSendsConsent"] = _operation(
        "send", "consent", "consentRecord", ("consent-source",),
        "Consent is recorded",
        "Participant: the system where consent is recorded (the local authority's connector). It sends one "
        "ConsentRecord per consent given, refused, withdrawn or not sought, keyed by child, audience and "
        "purpose so that compaction keeps each audience's consent.")
    for agency, part in AGENCIES:
        ops[f"filterReceives{_pascal(part)}Events"] = _operation(
            "receive", f"ingress{_pascal(part)}", "safeguardingEvent", ("filter",),
            f"The filter receives {agency} events",
            "Participant: the filter. All filter processes share one consumer group over every ingress topic "
            "(cooperative-sticky assignment, read_committed); the consumed offsets are committed inside the "
            "transaction that writes the event's deliveries and audit records.",
            _group("The filter's consumer group (`sgb filter run --group`, default `sgb-filter`), shared by "
                   "every filter process.", default="sgb-filter", examples=["sgb-filter"]))
    state_group = _group(
        "`<filter group>-state-<instance>`. Partitions are assigned, not subscribed: every filter process "
        "reads the whole topic (a global table) and keeps its positions in its own state store.",
        examples=["sgb-filter-state-filter-0"])
    ops["filterReceivesConsent"] = _operation(
        "receive", "consent", "consentRecord", ("filter",),
        "The filter receives consent records",
        "Participant: the filter. Every filter process reads the consent topic to its end before deciding "
        "anything, and keeps reading; the newest consent by recorded time is in force.", state_group)
    ops["filterReceivesStatus"] = _operation(
        "receive", "status", "childStatus", ("filter",),
        "The filter receives child status",
        "Participant: the filter. Every filter process rebuilds per-child flags and known organisations from "
        "this topic at start and keeps it current.", state_group)
    transactional = ("inside the filter's Kafka transaction (transactional id `<group>-<instance>`), "
                     "together with the consumed offsets")
    ops["filterSendsStatus"] = _operation(
        "send", "status", "childStatus", ("filter",),
        "The filter sends child status changes",
        f"Participant: the filter. When an event changes a child's flags it sends the new ChildStatus, "
        f"{transactional}.")
    ops["filterSendsDeliveries"] = _operation(
        "send", "delivery", "deliveredEvent", ("filter",),
        "The filter sends each granted copy",
        "Participant: the filter. For each audience and organisation a policy rule grants, it sends the "
        f"redacted copy to that organisation's delivery topic {transactional}, keyed by the child's key "
        "pseudonymised for that recipient, with headers `sgb.event_id` and `sgb.policy_version`. A copy "
        "that cannot be redacted or encoded is withheld (`redaction_failed`), never sent unredacted.")
    ops["filterSendsAudit"] = _operation(
        "send", "audit", "auditDecision", ("filter",),
        "The filter sends one audit record per decision",
        f"Participant: the filter. Exactly one AuditDecision per (event, candidate audience) pair, share or "
        f"withhold, keyed by event id, {transactional}.")
    ops["filterSendsDeadLetters"] = _operation(
        "send", "deadLetters", "deadLetter", ("filter",),
        "The filter sends what it cannot decode, validate or evaluate",
        "Participant: the filter. Fail closed: an event it cannot decode, that identifies no child, or that "
        "the engine rejects goes to no one but here, with the original bytes and key and headers "
        f"`sgb.component` (`filter`), `sgb.reason` and `sgb.origin.topic|partition|offset`, {transactional}.")
    ops["hubReceivesDeliveries"] = _operation(
        "receive", "delivery", "deliveredEvent", ("hub",),
        "A hub receives its deliveries",
        "Participant: a safeguarding hub organisation (`sgb hub subscribe <audience> <organisation> --sink "
        "...`). It reads only its own delivery topic with `isolation.level=read_committed`, writes each "
        "event to its sink and commits the offset only after that write. `--since` replays from a time.",
        _group("`sgb-hub-<audience>-<organisation>` by default, one per hub organisation; "
               "`sgb hub subscribe --group` names another.", examples=["sgb-hub-school_dsl-100000"]))
    ops["operatorReceivesDeadLetters"] = _operation(
        "receive", "deadLetters", "deadLetter", ("operator",),
        "An operator watches dead letters",
        "Participant: an operator. Reads dead letters (filtering on the headers without decoding), fixes the "
        "cause and re-submits the kept original bytes.")
    ops["operatorMarksReplayed"] = _operation(
        "send", "deadLettersReplayed", "replayMarker", ("operator",),
        "An operator replays dead letters after a fix",
        "Participant: an operator running `sgb dlq replay`. Each re-sent payload and its marker are written in "
        "one transaction, so a dead letter is re-sent at most once.")
    ops["operatorReceivesAudit"] = _operation(
        "receive", "audit", "auditDecision", ("operator",),
        "An operator reads or archives the audit trail",
        "Participant: an operator (or the governance tooling it runs). Reads the audit trail to answer what "
        "was shared with whom and why, and archives it before any change of retention.")
    ops["registerSchemas"] = _operation(
        "send", "schemas", "schemaRegistration", ("connector", "filter", "operator"),
        "Writers register the schemas they write with",
        "Participants: every writer of Avro (connectors and the filter, on first use of a schema) and an "
        "operator (`sgb schemas register`). With the embedded registry each registration is a record here; "
        "registering the same schema again is harmless (same id, same key).")
    ops["lookUpSchemas"] = _operation(
        "receive", "schemas", "schemaRegistration", ("filter", "hub", "operator"),
        "Readers look up a schema id they do not know",
        "Participants: every reader of Avro (the filter, hubs, operators' tools). A reader that meets an "
        "unknown schema id reads this topic from its start to its end.",
        _group("Manual assignment from the start; no offsets are committed.", enum=["sgb-schema-reader"]))
    return ops


def _components() -> dict[str, Any]:
    return {
        "schemas": _key_schemas(),
        "messages": _messages(),
        "securitySchemes": {
            "saslScram": {
                "type": "scramSha512",
                "description": "SASL/SCRAM-SHA-512 over TLS (`security.protocol=SASL_SSL`, "
                               "`sasl.mechanism=SCRAM-SHA-512`): one Kafka user per connector, hub "
                               "organisation and filter (`SGB_SASL_USERNAME`, `SGB_SASL_PASSWORD`, "
                               "`SGB_SSL_CA_LOCATION`).",
            },
            "mutualTls": {
                "type": "X509",
                "description": "Mutual TLS (`security.protocol=SSL`): the client presents a certificate "
                               "issued to its principal (`SGB_SSL_CERTIFICATE_LOCATION`, "
                               "`SGB_SSL_KEY_LOCATION`, `SGB_SSL_CA_LOCATION`).",
            },
        },
        "tags": {_tag_key(name): {"name": f"participant:{name}", "description": text}
                 for name, text in PARTICIPANTS.items()},
    }


def build(declaration: TopicDeclaration | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document as a plain dict (insertion order is the document's order).

    Args:
        declaration: the topic declaration; ``deploy/topics.yaml`` by default.
    """
    declaration = declaration or load_declaration()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:uk:sgb:kafka",
        "info": _info(declaration),
        "servers": _servers(),
        "defaultContentType": AVRO_CONTENT_TYPE,
        "channels": _channels(declaration),
        "operations": _operations(),
        "components": _components(),
    }


def render(document: dict[str, Any], fmt: str = "yaml") -> str:
    """The document as YAML (default) or JSON text; keys stay in the order they were built."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt != "yaml":
        msg = f"unknown format {fmt!r} (expected yaml or json)"
        raise ValueError(msg)
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)


class _Dumper(yaml.SafeDumper):
    """``yaml.safe_dump``'s dumper, with multi-line text (the descriptions) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def format_for(path: Path | None) -> str:
    """JSON for a ``.json`` file, YAML otherwise (and on standard output)."""
    return "json" if path is not None and path.suffix.lower() == ".json" else "yaml"
