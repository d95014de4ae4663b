"""Topics as code: make the cluster match the declaration (:mod:`schemas.topics`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported at run time, not in the stubs
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from broker.clients import admin_client
from broker.settings import Settings
from schemas.exceptions import TopicsError
from schemas.topics import DELIVERY_PREFIX, TopicDeclaration, TopicSpec


@dataclass
class ApplyReport:
    """What ``apply`` did, topic by topic."""

    created: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.altered)


def apply(
    settings: Settings, declaration: TopicDeclaration, *, dry_run: bool = False, timeout: float = 30.0
) -> ApplyReport:
    """Create missing topics and change what differs from the declaration.

    Partitions can only grow; a replication factor that differs is reported, not changed
    (that is a reassignment, an operator's decision).
    """
    admin = admin_client(settings)
    report = ApplyReport()
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"Kafka at {settings.bootstrap} did not answer: {exc.args[0].str()}."
        raise TopicsError(msg) from None
    brokers = max(1, len(metadata.brokers))
    to_create: list[NewTopic] = []
    to_check: list[tuple[TopicSpec, str]] = []
    for spec in declaration.all_topics():
        name = settings.topic(spec.name)
        replication = min(spec.replication_factor or 1, brokers)
        config = dict(spec.config)
        if "min.insync.replicas" in config:
            config["min.insync.replicas"] = str(min(int(config["min.insync.replicas"]), replication))
        existing = metadata.topics.get(name)
        if existing is None:
            to_create.append(
                NewTopic(name, num_partitions=spec.partitions, replication_factor=replication, config=config)
            )
            continue
        actual_replication = len(existing.partitions[0].replicas) if existing.partitions else 0
        if actual_replication != replication:
            report.notes.append(
                f"{name}: replication is {actual_replication}, declared {replication} (not changed)"
            )
        to_check.append((spec.model_copy(update={"config": config}), name))
        if len(existing.partitions) < spec.partitions:
            if not dry_run:
                _wait(admin.create_partitions([NewPartitions(name, spec.partitions)]), "adding partitions")
            report.altered.append(f"{name}: partitions {len(existing.partitions)} -> {spec.partitions}")
        elif len(existing.partitions) > spec.partitions:
            report.notes.append(
                f"{name}: has {len(existing.partitions)} partitions, declared {spec.partitions} "
                "(Kafka cannot remove partitions)"
            )
    if to_create and not dry_run:
        _wait(admin.create_topics(to_create, operation_timeout=timeout), "creating topics")
        _wait_for_leaders(admin, [t.topic for t in to_create], timeout)
    report.created.extend(t.topic for t in to_create)
    _reconcile_configs(admin, to_check, report, dry_run)
    return report


def _wait_for_leaders(admin: Any, names: list[str], timeout: float) -> None:
    """Return once every partition of the new topics has a leader, so producers and
    consumers that start next do not race the controller."""
    import time

    deadline = time.monotonic() + timeout
    pending = set(names)
    partitions: dict[str, list[int]] = {}
    while pending and time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=timeout)
        for name in list(pending):
            topic = metadata.topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and topic.partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                partitions[name] = list(topic.partitions)
                pending.discard(name)
        if pending:
            time.sleep(0.1)
    if pending:
        msg = f"Kafka created {len(pending)} topic(s) but gave them no leader within {timeout:.0f} s."
        raise TopicsError(msg)
    # The controller knows the leaders before every broker does: wait until each new
    # partition answers an offsets request, so clients that start next never see
    # NOT_LEADER_FOR_PARTITION.
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    # (Partitions as first seen with leaders: on a cluster, the next metadata answer may come
    # from a broker that has not heard of a new topic yet.)
    waiting = [TopicPartition(name, p) for name in names for p in partitions[name]]
    while waiting and time.monotonic() < deadline:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = admin.list_offsets({tp: latest for tp in waiting}, request_timeout=timeout)
        failed = []
        for tp, future in futures.items():
            try:
                future.result()
            except KafkaException:
                failed.append(TopicPartition(tp.topic, tp.partition))
        waiting = failed
        if waiting:
            time.sleep(0.1)


def _reconcile_configs(
    admin: Any, specs: list[tuple[TopicSpec, str]], report: ApplyReport, dry_run: bool
) -> None:
    if not specs:
        return
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for _, name in specs]
    described = _wait(admin.describe_configs(resources), "reading topic configs")
    altered_names = {line.split(":")[0] for line in report.altered}
    for (spec, name), resource in zip(specs, resources, strict=True):
        current = described[resource]
        diffs = {k: v for k, v in spec.config.items() if k not in current or current[k].value != v}
        if not diffs:
            if name not in altered_names:
                report.unchanged.append(name)
            continue
        if not dry_run:
            change = ConfigResource(
                ConfigResource.Type.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in diffs.items()
                ],
            )
            _wait(admin.incremental_alter_configs([change]), "changing topic configs")
        detail = ", ".join(
            f"{k} {current[k].value if k in current else '?'} -> {v}" for k, v in diffs.items()
        )
        report.altered.append(f"{name}: {detail}")


def _wait(futures: dict[Any, Any], what: str) -> dict[Any, Any]:
    results = {}
    for key, future in futures.items():
        try:
            results[key] = future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if what == "creating topics" and error.name() == "TOPIC_ALREADY_EXISTS":
                continue
            msg = f"Kafka refused {what} for {key}: {error.str()}."
            raise TopicsError(msg) from None
    return results


def onboarded(settings: Settings, timeout: float = 10.0) -> set[str]:
    """The delivery topics that exist on the cluster (physical names)."""
    metadata = admin_client(settings).list_topics(timeout=timeout)
    prefix = settings.topic(DELIVERY_PREFIX)
    return {name for name in metadata.topics if name.startswith(prefix)}
