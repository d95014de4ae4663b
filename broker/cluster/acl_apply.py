"""Applying the ACLs of :mod:`broker.cluster.acls` to a cluster that runs an authorizer
(``sgb topics apply``): what the cluster holds, what the declaration asks for with the
settings' topic prefix applied, and the difference, created or reported (and with ``prune``,
deleted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported at run time, not in the stubs
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from broker.clients import admin_client
from broker.cluster.acls import OPERATOR_READ_GROUP, SCHEMA_READER_GROUP, principals
from broker.exceptions import NoAuthorizer, TopicsError
from broker.settings import Settings
from schemas.topics import TopicDeclaration

_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
_OPERATIONS = {"Read": AclOperation.READ, "Write": AclOperation.WRITE, "Describe": AclOperation.DESCRIBE}


@dataclass(frozen=True, slots=True, order=True)
class Binding:
    """One ACL as the cluster holds it: a principal allowed one operation on one resource."""

    principal: str  # User:<name>
    resource: str
    name: str
    pattern: str
    operation: str

    def describe(self) -> str:
        """One line for a report, e.g. ``User:sgb-filter Read topic sg.ingress.* (prefix)``."""
        star = "*" if self.pattern == "prefix" else ""
        return f"{self.principal} {self.operation} {self.resource} {self.name}{star}"

    def to_kafka(self) -> AclBinding:
        return AclBinding(
            _RESOURCES[self.resource],
            self.name,
            _PATTERNS[self.pattern],
            self.principal,
            "*",
            _OPERATIONS[self.operation],
            AclPermissionType.ALLOW,
        )


def bindings(settings: Settings, declaration: TopicDeclaration) -> set[Binding]:
    """The ACLs the declaration asks for on this cluster, with the settings' prefix applied."""
    out = set()
    for principal in principals(declaration):
        for acl in principal.acls:
            name = settings.topic(acl.name) if acl.prefixed else acl.name
            for operation in acl.operations:
                out.add(Binding(f"User:{principal.name}", acl.resource, name, acl.pattern, operation))
    return out


@dataclass
class AclReport:
    """What applying the ACLs found and did."""

    enabled: bool = True
    created: list[Binding] = field(default_factory=list)
    undeclared: list[Binding] = field(default_factory=list)
    removed: list[Binding] = field(default_factory=list)
    unchanged: int = 0

    @property
    def drift(self) -> bool:
        """The cluster's ACLs differed from the declaration before this run."""
        return bool(self.created or self.undeclared or self.removed)


def _from_kafka(acl: Any) -> Binding:
    resource = {v: k for k, v in _RESOURCES.items()}.get(acl.restype)
    pattern = {v: k for k, v in _PATTERNS.items()}.get(acl.resource_pattern_type)
    operation = {v: k for k, v in _OPERATIONS.items()}.get(acl.operation)
    declarable = None not in (resource, pattern, operation)
    if not declarable or acl.permission_type != AclPermissionType.ALLOW or acl.host != "*":
        # Something sgb never declares (a deny, a host, another operation): always drift.
        what = f"{acl.operation.name}/{acl.permission_type.name}@{acl.host}"
        return Binding(
            acl.principal, acl.restype.name.lower(), acl.name, acl.resource_pattern_type.name.lower(), what
        )
    return Binding(acl.principal, str(resource), acl.name, str(pattern), str(operation))


def current_bindings(settings: Settings, timeout: float = 30.0) -> tuple[set[Binding], list[Any]] | None:
    """The cluster's ACLs (and their raw form), or None when the cluster runs no authorizer."""
    admin = admin_client(settings)
    # None: any name, principal and host.
    # (The stubs type every field as str; librdkafka takes None as "any".)
    any_filter: Any = AclBindingFilter
    everything = any_filter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    try:
        raw = admin.describe_acls(everything, request_timeout=timeout).result()
    except KafkaException as exc:
        error = exc.args[0]
        if error.code() == KafkaError.SECURITY_DISABLED:
            return None
        msg = f"Kafka at {settings.bootstrap} refused to list its ACLs: {error.str()}."
        raise TopicsError(msg) from None
    found: set[Binding] = set()
    kept = []
    for acl in raw:
        if settings.topic_prefix and not _ours(settings, acl.name):
            continue  # another environment's ACL on a shared cluster
        found.add(_from_kafka(acl))
        kept.append(acl)
    return found, kept


#: The names no topic prefix is put in front of: every environment on a cluster shares them.
UNPREFIXED = frozenset({SCHEMA_READER_GROUP, OPERATOR_READ_GROUP})


def _ours(settings: Settings, name: str) -> bool:
    return name.startswith(settings.topic_prefix) or name in UNPREFIXED


def apply_acls(
    settings: Settings,
    declaration: TopicDeclaration,
    *,
    dry_run: bool = False,
    prune: bool = False,
    timeout: float = 30.0,
) -> AclReport:
    """Create the declared ACLs that are missing; report (or, with ``prune``, delete) the others.

    A cluster without an authorizer has no ACLs to apply: the report says so (``enabled`` False).
    With a topic prefix only ACLs on names with that prefix are compared, so environments
    sharing a cluster do not see each other's ACLs as drift.
    """
    current = current_bindings(settings, timeout)
    report = AclReport()
    if current is None:
        report.enabled = False
        return report
    found, raw = current
    wanted = bindings(settings, declaration)
    report.created = sorted(wanted - found)
    report.unchanged = len(wanted & found)
    extra = found - wanted
    admin = admin_client(settings)
    if report.created and not dry_run:
        created = admin.create_acls([b.to_kafka() for b in report.created], request_timeout=timeout)
        try:
            _wait(created, "creating ACLs")
        except NoAuthorizer:
            return AclReport(enabled=False)
    if prune:
        report.removed = sorted(extra)
        if extra and not dry_run:
            doomed = [
                AclBindingFilter(
                    a.restype,
                    a.name,
                    a.resource_pattern_type,
                    a.principal,
                    a.host,
                    a.operation,
                    a.permission_type,
                )
                for a in raw
                if _from_kafka(a) in extra
            ]
            _wait(admin.delete_acls(doomed, request_timeout=timeout), "deleting ACLs")
    else:
        report.undeclared = sorted(extra)
    return report


def _wait(futures: dict[Any, Any], what: str) -> None:
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.SECURITY_DISABLED:
                raise NoAuthorizer from None
            msg = f"Kafka refused {what}: {exc.args[0].str()}."
            raise TopicsError(msg) from None
