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

Layout: this module assembles the document (``info``, ``servers``, ``components``) and holds
the public entry points ``build``, ``render`` and ``format_for``;
``sgb/asyncapi/channels.py`` builds the channels and ``messages.py`` the messages,
``sgb/asyncapi/operations.py`` the operations, and ``sgb/asyncapi/common.py`` holds
the shared constants and helpers.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from schemas.topics import (
    AUDIT_TOPIC,
    CONSENT_TOPIC,
    DLQ_TOPIC,
    REPLAYED_TOPIC,
    SCHEMAS_TOPIC,
    STATUS_TOPIC,
    TopicDeclaration,
    load_declaration,
)
from sgb.asyncapi.channels import _channels, _key_schemas
from sgb.asyncapi.common import (
    AGENCIES,
    ASYNCAPI_VERSION,
    AUDIENCE_ORGANISATION,
    AVRO_CONTENT_TYPE,
    AVRO_FORMAT,
    DELIVERY_ADDRESS,
    KAFKA_BINDING,
    KEY_DESCRIPTIONS,
    NAMESPACE,
    PARTICIPANTS,
    _participant_tags,
    _ref,
    _tag_key,
)
from sgb.asyncapi.messages import _messages
from sgb.asyncapi.operations import _operations

__all__ = [
    "AGENCIES",
    "ASYNCAPI_VERSION",
    "AUDIENCE_ORGANISATION",
    "AUDIT_TOPIC",
    "AVRO_CONTENT_TYPE",
    "AVRO_FORMAT",
    "CONSENT_TOPIC",
    "DELIVERY_ADDRESS",
    "DLQ_TOPIC",
    "KAFKA_BINDING",
    "KEY_DESCRIPTIONS",
    "NAMESPACE",
    "PARTICIPANTS",
    "REPLAYED_TOPIC",
    "SCHEMAS_TOPIC",
    "STATUS_TOPIC",
    "build",
    "format_for",
    "render",
]


def _package_version() -> str:
    try:
        return metadata.version("sgb")
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


# -- the document -----------------------------------------------------------------------------
def _info(declaration: TopicDeclaration) -> dict[str, Any]:
    description = "\n".join(
        [
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
            "and one `AuditRecord` per event (its decision for every candidate audience, share or withhold) to "
            "`sg.audit.decisions.v1`. "
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
        ]
    )
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
            "security": [
                _ref("components", "securitySchemes", "saslScram"),
                _ref("components", "securitySchemes", "mutualTls"),
            ],
            "bindings": {
                "kafka": {
                    "schemaRegistryUrl": "https://schema-registry.sgb.example.invalid",
                    "schemaRegistryVendor": "confluent",
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        },
    }


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
        "tags": {
            _tag_key(name): {"name": f"participant:{name}", "description": text}
            for name, text in PARTICIPANTS.items()
        },
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
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )


class _Dumper(yaml.SafeDumper):
    """``yaml.safe_dump``'s dumper, with multi-line text (the descriptions) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def format_for(path: Path | None) -> str:
    """JSON for a ``.json`` file, YAML otherwise (and on standard output)."""
    return "json" if path is not None and path.suffix.lower() == ".json" else "yaml"
