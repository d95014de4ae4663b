"""Principals and ACLs as code: who may do what on the cluster, derived from ``deploy/topics.yaml``.

One model serves two places: ``sgb deploy k8s`` turns it into Strimzi ``KafkaUser``
resources, and ``sgb topics apply`` applies it to a cluster that runs an authorizer (the
local runtime started with ``--security``; :mod:`broker.cluster.acl_apply`), with the
settings' topic prefix applied to topic, group and transactional id names as the running
code applies it.

The rules: a connector may only write its own ingress topic (and the dead-letter topic);
a hub may only read its own delivery topic with its own group; only the filter reads
ingress and writes deliveries, audit and status; ``sgb erase`` runs as its own principal,
which reads the share ledger and the compacted topics' keys, writes the erasure notices and
the tombstones, and reads no event. The broker and the admin principal are super users and
need no ACL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.topics import (
    AUDIENCES,
    AUDIT_TOPIC,
    CHECKPOINTS_TOPIC,
    CONSENT_TOPIC,
    DELIVERY_PREFIX,
    DLQ_TOPIC,
    IDENTITY_LINKS_TOPIC,
    INGRESS_PREFIX,
    SCHEMAS_TOPIC,
    SHARES_TOPIC,
    STATUS_TOPIC,
    TopicDeclaration,
    delivery_topic,
    ingress_topic,
)

FILTER_GROUP = "sgb-filter"
#: The principal the brokers authenticate as to each other and to the controllers.
BROKER_PRINCIPAL = "sgb-broker"
#: The operator's principal: creates topics, ACLs and credentials (a super user, no ACLs).
ADMIN_PRINCIPAL = "sgb-admin"
#: Who runs ``sgb erase`` (a data protection officer's credential, not the admin's).
ERASE_PRINCIPAL = "sgb-erase"
#: The group id operator commands read with (``sgb-status-<random>``; see ``sgb/ops/topic_reads.py``).
OPERATOR_READ_GROUP = "sgb-status-"
#: The group the embedded schema registry reads registrations with: not prefixed (see registry.py).
SCHEMA_READER_GROUP = "sgb-schema-reader"


@dataclass(frozen=True, slots=True)
class Acl:
    """One allow rule: operations on a resource (a name, or a prefix of names).

    ``prefixed`` says whether the running code puts the settings' topic prefix in front of
    the name (topics, groups and transactional ids all get it, the schema reader's group not).
    """

    resource: str  # topic, group, transactionalId
    name: str
    operations: tuple[str, ...]
    pattern: str = "literal"
    prefixed: bool = True


@dataclass(frozen=True, slots=True)
class Principal:
    """A Kafka user and what it may do."""

    name: str
    role: str  # filter, connector, hub, operator
    acls: tuple[Acl, ...]


def k8s_name(text: str) -> str:
    """A Kubernetes object name for ``text``: lower case, with ``_`` as ``-``."""
    name = text.lower().replace("_", "-")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
        msg = f"{text!r} cannot be turned into a Kubernetes name."
        raise ValueError(msg)
    return name


def agencies(declaration: TopicDeclaration) -> list[str]:
    """The agencies with a declared ingress topic, e.g. ``police``, ``local_authority``."""
    found = [re.fullmatch(r"sg\.ingress\.([a-z_]+)\.v[0-9]+", t.name) for t in declaration.topics]
    return [m.group(1) for m in found if m]


def organisations(declaration: TopicDeclaration) -> list[tuple[str, str]]:
    """Every onboarded (audience, organisation) pair, audiences in their fixed order."""
    orgs = declaration.deliveries.organisations
    return [(audience, org) for audience in AUDIENCES for org in orgs.get(audience, [])]


def hub_name(audience: str, organisation: str) -> str:
    """The Kafka user (and workload) name of one hub organisation."""
    return k8s_name(f"sgb-hub-{audience}-{organisation}")


def connector_name(agency: str) -> str:
    """The Kafka user of one agency's connectors, e.g. ``sgb-connector-police``."""
    return k8s_name(f"sgb-connector-{agency}")


def principals(declaration: TopicDeclaration) -> list[Principal]:
    """Every principal with its ACLs: the filter, ``sgb erase``, a connector per agency, a hub
    per organisation."""
    # Writers (connectors, the filter) register the schemas they encode with; readers (hubs)
    # use the read-only registry and only read the registrations.
    schemas_rw = Acl("topic", SCHEMAS_TOPIC, ("Read", "Write", "Describe"))
    schemas_read = Acl("topic", SCHEMAS_TOPIC, ("Read", "Describe"))
    # The embedded registry reads registrations with this group id (assigned, never committed).
    schema_reader = Acl("group", SCHEMA_READER_GROUP, ("Read",), prefixed=False)
    out = [
        Principal(
            "sgb-filter",
            "filter",
            (
                Acl("topic", INGRESS_PREFIX, ("Read", "Describe"), "prefix"),
                # The filter republishes the consent record in force (newest by recorded time wins) and
                # publishes the status it derives, so it writes as well as reads these two.
                Acl("topic", CONSENT_TOPIC, ("Read", "Write", "Describe")),
                Acl("topic", STATUS_TOPIC, ("Read", "Write", "Describe")),
                # Identity links it makes on evidence, and reads back (with the operators') as a global table.
                Acl("topic", IDENTITY_LINKS_TOPIC, ("Read", "Write", "Describe")),
                # The share ledger: written with each batch, read back as a global table.
                Acl("topic", SHARES_TOPIC, ("Read", "Write", "Describe")),
                Acl("topic", DELIVERY_PREFIX, ("Write", "Describe"), "prefix"),
                Acl("topic", AUDIT_TOPIC, ("Write", "Describe")),
                Acl("topic", DLQ_TOPIC, ("Write", "Describe")),
                schemas_rw,
                # The group the processes share, and each process's state reader (<group>-state-<instance>).
                Acl("group", FILTER_GROUP, ("Read", "Describe"), "prefix"),
                schema_reader,
                # Transactional ids are <group>-<instance>.
                Acl("transactionalId", FILTER_GROUP, ("Write", "Describe"), "prefix"),
            ),
        ),
        Principal(
            ERASE_PRINCIPAL,
            "operator",
            (
                # The ledger says which of the child's events were shared (it holds keys and
                # ids, no content); the compacted topics are read for the child's keys only.
                Acl("topic", SHARES_TOPIC, ("Read", "Describe")),
                # Tombstones for what the compacted topics keep of the child.
                Acl("topic", CONSENT_TOPIC, ("Read", "Write", "Describe")),
                Acl("topic", STATUS_TOPIC, ("Read", "Write", "Describe")),
                Acl("topic", IDENTITY_LINKS_TOPIC, ("Read", "Write", "Describe")),
                # An ERASED notice goes to the ingress topic of the agency that sent the event, so
                # the filter routes it to the original's recipients. Write only: it reads no event.
                Acl("topic", INGRESS_PREFIX, ("Write", "Describe"), "prefix"),
                schemas_read,
                schema_reader,
                # Operator commands read with partitions assigned under a throwaway group id
                # (sgb-status-<random>, unprefixed, never committed); the client still looks the
                # group's coordinator up, which needs Describe, so the read is not refused.
                Acl("group", OPERATOR_READ_GROUP, ("Describe",), "prefix", prefixed=False),
            ),
        ),
    ]
    for agency in agencies(declaration):
        # The local authority's case system is where consent is recorded: its connector
        # publishes consent records as well as events.
        consent = (Acl("topic", CONSENT_TOPIC, ("Write", "Describe")),) if agency == "local_authority" else ()
        out.append(
            Principal(
                connector_name(agency),
                "connector",
                (
                    Acl("topic", ingress_topic(agency), ("Write", "Describe")),
                    *consent,
                    # What a connector cannot map goes to the dead-letter topic with its reason.
                    Acl("topic", DLQ_TOPIC, ("Write", "Describe")),
                    # File connectors commit their checkpoint in each batch's transaction and read
                    # it back at start (keys are <connector name>/<file id>: positions, no content).
                    Acl("topic", CHECKPOINTS_TOPIC, ("Read", "Write", "Describe")),
                    Acl("group", f"sgb-connector-{agency}", ("Read", "Describe"), "prefix"),
                    schemas_rw,
                    schema_reader,
                    # Transactional ids are sgb-connector-<name>; names start with the agency.
                    Acl("transactionalId", f"sgb-connector-{agency}", ("Write", "Describe"), "prefix"),
                ),
            )
        )
    for audience, org in organisations(declaration):
        out.append(
            Principal(
                hub_name(audience, org),
                "hub",
                (
                    Acl("topic", delivery_topic(audience, org), ("Read", "Describe")),
                    Acl("group", f"sgb-hub-{audience.lower()}-{org}", ("Read", "Describe")),
                    # The inbox page's own subscriber (sgb hub serve); literal, as a prefix would also
                    # match a longer organisation code that starts with this one.
                    Acl("group", f"sgb-hub-{audience.lower()}-{org}-inbox", ("Read", "Describe")),
                    # Hubs only look schemas up (read-only registry): a hub that could write
                    # registrations could poison every reader's schema lookups.
                    schemas_read,
                    schema_reader,
                ),
            )
        )
    return out


def principal_names(declaration: TopicDeclaration) -> list[str]:
    """The names credentials may be made for: the admin and every declared principal."""
    return [ADMIN_PRINCIPAL, *(p.name for p in principals(declaration))]
