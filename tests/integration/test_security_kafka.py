"""Authenticated, encrypted Kafka with ACLs as code, on a real secured broker.

The module starts its own broker with ``--security sasl_ssl`` (TLS from a CA made at run
time, SCRAM-SHA-512, the standard authorizer), applies the topics and ACLs of
``deploy/topics.yaml`` as the admin with ``sgb topics apply``, and gives principals their
credentials with ``sgb credentials create``. Then each principal does what it may and is
refused what it may not, with the broker's own authorization errors. The mutual TLS case
starts a second broker with ``--security mtls``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from conftest import RunningFilter
from factories import domestic_abuse_incident

from broker.clients import admin_client, consumer, producer
from broker.cluster.acl_apply import apply_acls
from broker.cluster.credentials import CredentialsError, issue
from broker.cluster.free_ports import start_on_free_ports
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.security import client_settings_file, load_client_settings
from broker.cluster.topics import apply
from broker.settings import Settings
from connectors.runtime.publisher import EventPublisher
from schemas.topics import load_declaration

PREFIX = "sec."
POLICE = "sgb-connector-police"
HEALTH = "sgb-connector-health"
FILTER = "sgb-filter"
SCHOOL_0 = "sgb-hub-school-dsl-100000"
MASH = "sgb-hub-mash-202"
ERASE = "sgb-erase"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Secured:
    """A running secured broker: its admin's settings and a way to get any principal's."""

    cluster: LocalKafka
    admin: Settings
    base: Settings

    def credential(self, principal: str) -> Settings:
        """The principal's settings, creating its credential the first time."""
        path = client_settings_file(self.admin, principal)
        if not path.is_file():
            issue(self.admin, principal, load_declaration())
        return load_client_settings(path, self.base)

    def sgb(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the ``sgb`` command against this broker."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SGB_")},
            "SGB_STATE_DIR": str(self.base.state_dir),
            "SGB_TOPIC_PREFIX": PREFIX,
            "SGB_LOG_FORMAT": "json",
        }
        cmd = [sys.executable, "-m", "sgb.cli"]
        if config is not None:
            cmd += ["--config", str(config)]
        return subprocess.run(
            [*cmd, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False
        )


def _start(tmp: Path, security: str) -> tuple[LocalKafka, Settings]:
    cluster = start_on_free_ports(
        lambda port: LocalKafka(
            Settings(kafka_port=port, state_dir=tmp, kafka_heap="512m", topic_prefix=PREFIX), 1, security
        )
    )
    return cluster, cluster.settings.model_copy(update={"bootstrap_servers": cluster.bootstrap})


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    cluster, base = _start(tmp_path_factory.mktemp("sgb-sasl"), "sasl_ssl")
    try:
        admin_file = cluster.admin_settings_file
        assert admin_file is not None and admin_file.stat().st_mode & 0o077 == 0
        running = Secured(cluster, load_client_settings(admin_file, base), base)
        applied = running.sgb("topics", "apply", config=admin_file)
        assert applied.returncode == 0, applied.stderr
        assert re.search(r"ACLs: [1-9][0-9]* added", applied.stdout), applied.stdout
        yield running
    finally:
        cluster.stop()


# -- helpers: what a client sees -------------------------------------------------------------------
def produce(settings: Settings, logical: str) -> KafkaError | None:
    """Produce one synthetic record; the delivery error or None.

    Not idempotent: an idempotent producer first needs a producer id, which a principal with no
    Write right anywhere (a hub, now that hubs only read schema registrations) is refused as a
    fatal cluster error before any topic is checked. A plain producer shows the topic's answer."""
    reports: list[KafkaError | None] = []
    prod = producer(settings, **{"message.timeout.ms": 20000, "enable.idempotence": False, "acks": "all"})
    prod.produce(
        settings.topic(logical), b"synthetic", key=b"k", on_delivery=lambda err, _msg: reports.append(err)
    )
    prod.flush(30)
    assert reports, "no delivery report"
    return reports[0]


def consume(
    settings: Settings, logical: str, group: str, *, expect: int = 1, prefixed: bool = True
) -> tuple[list[bytes], set[int]]:
    """Subscribe with ``group`` (after the prefix) and read; the values read and the error codes seen."""
    cons = consumer(settings, settings.topic(group) if prefixed else group)
    cons.subscribe([settings.topic(logical)])
    values: list[bytes] = []
    errors: set[int] = set()
    try:
        for _ in range(60):
            for msg in cons.consume(10, timeout=0.5):
                if msg.error():
                    errors.add(msg.error().code())
                else:
                    values.append(msg.value())
            if len(values) >= expect or errors:
                break
    finally:
        cons.close()
    return values, errors


def read_assigned(
    reader: Settings, admin: Settings, logical: str, group: str | None = None
) -> tuple[int, set[int]]:
    """Read every partition of ``logical`` from its start as ``reader``, with partitions
    assigned and no group joined (as the operator commands read): (messages read, error codes
    seen). The partitions are looked up as the admin, since a refused reader cannot see them."""
    topic = reader.topic(logical)
    count = len(admin_client(admin).list_topics(topic, timeout=10).topics[topic].partitions)
    group = group or f"sgb-status-{uuid.uuid4().hex[:12]}"
    cons = consumer(reader, group, **{"enable.partition.eof": True})
    cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(count)])
    read, errors, ended = 0, set(), set()
    try:
        for _ in range(40):
            for msg in cons.consume(100, timeout=0.5):
                if not msg.error():
                    read += 1
                elif msg.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(msg.partition())
                else:
                    errors.add(msg.error().code())
            if errors or len(ended) == count:
                break  # refused, or read to the end (a topic the reader cannot see never ends)
    finally:
        cons.close()
    return read, errors


def connection_errors(config: dict[str, object]) -> tuple[bool, set[int]]:
    """Ask for metadata with this raw client configuration: (answered, error codes reported)."""
    seen: set[int] = set()
    client = Producer({**config, "error_cb": lambda err: seen.add(err.code())})
    try:
        client.list_topics(timeout=10)
        answered = True
    except KafkaException as exc:
        seen.add(exc.args[0].code())
        answered = False
    client.poll(1)
    return answered, seen


# -- connectors -------------------------------------------------------------------------------------
def test_police_connector_writes_its_own_ingress(secured: Secured) -> None:
    assert produce(secured.credential(POLICE), "sg.ingress.police.v1") is None


def test_police_connector_cannot_write_health_ingress(secured: Secured) -> None:
    error = produce(secured.credential(POLICE), "sg.ingress.health.v1")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_police_connector_cannot_read_health_ingress(secured: Secured) -> None:
    assert produce(secured.credential(HEALTH), "sg.ingress.health.v1") is None  # there is something to read
    police = secured.credential(POLICE)
    # With a group it has no ACL for: the group is refused, nothing is read.
    values, errors = consume(police, "sg.ingress.health.v1", "police-reader")
    assert values == [] and KafkaError.GROUP_AUTHORIZATION_FAILED in errors
    # With the one group it may use (the schema reader's): the topic itself is refused.
    values, errors = consume(police, "sg.ingress.health.v1", "sgb-schema-reader", prefixed=False)
    assert values == [] and KafkaError.TOPIC_AUTHORIZATION_FAILED in errors


# -- hubs ------------------------------------------------------------------------------------------
def test_school_hub_reads_its_own_topic_with_its_group(secured: Secured) -> None:
    marker = uuid.uuid4().hex.encode()
    prod = producer(secured.credential(FILTER))  # only the filter writes deliveries
    prod.produce(secured.base.topic("sg.deliver.school_dsl.100000.v1"), marker, key=b"k")
    assert prod.flush(30) == 0
    values, errors = consume(
        secured.credential(SCHOOL_0),
        "sg.deliver.school_dsl.100000.v1",
        "sgb-hub-school_dsl-100000",
        expect=10_000,
    )
    assert not errors and marker in values


def test_school_hub_cannot_read_another_schools_topic(secured: Secured) -> None:
    values, errors = consume(
        secured.credential(SCHOOL_0), "sg.deliver.school_dsl.100001.v1", "sgb-hub-school_dsl-100000"
    )
    assert values == [] and KafkaError.TOPIC_AUTHORIZATION_FAILED in errors


@pytest.mark.parametrize("agency", ["police", "health", "education", "local_authority"])
def test_school_hub_cannot_read_any_ingress_topic(secured: Secured, agency: str) -> None:
    values, errors = consume(
        secured.credential(SCHOOL_0), f"sg.ingress.{agency}.v1", "sgb-hub-school_dsl-100000"
    )
    assert values == [] and KafkaError.TOPIC_AUTHORIZATION_FAILED in errors


def test_school_hub_cannot_write_its_own_delivery_topic(secured: Secured) -> None:
    error = produce(secured.credential(SCHOOL_0), "sg.deliver.school_dsl.100000.v1")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_school_hub_cannot_register_schemas(secured: Secured) -> None:
    # A hub that could write sg.schemas.v1 could poison every reader's schema lookups (issue 20).
    error = produce(secured.credential(SCHOOL_0), "sg.schemas.v1")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_school_hub_cannot_use_another_schools_group(secured: Secured) -> None:
    values, errors = consume(
        secured.credential(SCHOOL_0), "sg.deliver.school_dsl.100000.v1", "sgb-hub-school_dsl-100001"
    )
    assert values == [] and KafkaError.GROUP_AUTHORIZATION_FAILED in errors


# -- authentication -----------------------------------------------------------------------------------
def test_unauthenticated_clients_are_refused(secured: Secured) -> None:
    bootstrap = {"bootstrap.servers": secured.base.bootstrap}
    # No TLS, no credentials.
    answered, _ = connection_errors({**bootstrap, "security.protocol": "PLAINTEXT"})
    assert not answered
    # TLS but no SASL login.
    tls = {**bootstrap, "ssl.ca.location": str(secured.admin.ssl_ca_location)}
    answered, _ = connection_errors({**tls, "security.protocol": "SSL"})
    assert not answered
    # A user the cluster does not know, and a known user with a wrong password.
    for user, password in (("nobody", "guess"), (POLICE, "wrong-password")):
        answered, errors = connection_errors(
            {
                **tls,
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": user,
                "sasl.password": password,
            }
        )
        assert not answered and KafkaError._AUTHENTICATION in errors


def test_rotation_refuses_the_old_password_and_accepts_the_new(secured: Secured) -> None:
    principal = "sgb-connector-education"
    old = secured.credential(principal)
    assert produce(old, "sg.ingress.education.v1") is None
    rotated = secured.sgb("credentials", "rotate", principal, config=secured.cluster.admin_settings_file)
    assert rotated.returncode == 0, rotated.stderr
    new = load_client_settings(client_settings_file(secured.admin, principal), secured.base)
    assert new.sasl_password is not None and old.sasl_password is not None
    assert new.sasl_password.get_secret_value() != old.sasl_password.get_secret_value()
    answered, errors = connection_errors(old.kafka_config())
    assert not answered and KafkaError._AUTHENTICATION in errors
    assert produce(new, "sg.ingress.education.v1") is None
    # The secret is in the owner-only file, not in what the command printed or logged.
    assert new.sasl_password.get_secret_value() not in rotated.stdout + rotated.stderr
    assert client_settings_file(secured.admin, principal).stat().st_mode & 0o077 == 0


def test_credentials_only_for_declared_principals_and_not_twice(secured: Secured) -> None:
    with pytest.raises(CredentialsError, match="not a declared principal"):
        issue(secured.admin, "sgb-hub-school-dsl-999999", load_declaration())
    secured.credential(MASH)
    with pytest.raises(CredentialsError, match="already has a credential"):
        issue(secured.admin, MASH, load_declaration())
    listed = secured.sgb("credentials", "list", config=secured.cluster.admin_settings_file)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith(MASH + " "))
    assert "credential on cluster" in line and "no credential" not in line


# -- ACL drift ---------------------------------------------------------------------------------------
def test_acl_drift_is_reported_and_repaired(secured: Secured) -> None:
    admin_file = secured.cluster.admin_settings_file
    assert admin_file is not None
    clean = secured.sgb("topics", "apply", "--check", config=admin_file)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # By hand, someone lets the school hub write its own delivery topic and removes its read.
    topic = secured.base.topic("sg.deliver.school_dsl.100000.v1")
    admin = admin_client(secured.admin)
    write = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        f"User:{SCHOOL_0}",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    read = AclBindingFilter(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        f"User:{SCHOOL_0}",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([write]).values():
        future.result()
    for future in admin.delete_acls([read]).values():
        future.result()
    assert produce(secured.credential(SCHOOL_0), "sg.deliver.school_dsl.100000.v1") is None

    drift = secured.sgb("topics", "apply", "--check", config=admin_file)
    assert drift.returncode == 1
    assert f"would add ACL User:{SCHOOL_0} Read topic {topic}" in drift.stdout
    assert f"undeclared ACL User:{SCHOOL_0} Write topic {topic}" in drift.stdout

    repaired = secured.sgb("topics", "apply", "--prune", config=admin_file)
    assert repaired.returncode == 0, repaired.stderr
    assert f"removed ACL User:{SCHOOL_0} Write topic {topic}" in repaired.stdout
    assert secured.sgb("topics", "apply", "--check", config=admin_file).returncode == 0
    error = produce(secured.credential(SCHOOL_0), "sg.deliver.school_dsl.100000.v1")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_acls_are_not_applied_to_a_cluster_without_authorizer(kafka: Settings) -> None:
    report = apply_acls(kafka, load_declaration())
    assert not report.enabled and not report.created


# -- the real processes under their own principals ---------------------------------------------------
def test_pipeline_runs_with_each_process_as_its_own_principal(secured: Secured, tmp_path: Path) -> None:
    apply(secured.admin, load_declaration())  # nothing to change: the fixture applied it
    event = domestic_abuse_incident()
    publisher = EventPublisher(secured.credential(POLICE), "POLICE")
    publisher.publish(event)
    publisher.flush()
    filter_settings = secured.credential(FILTER).model_copy(update={"state_dir": tmp_path / "filter"})
    inbox = tmp_path / "mash.jsonl"
    with RunningFilter(filter_settings, group_id=f"{PREFIX}sgb-filter", instance="sec"):
        # The MASH's hub: the school's topic has the other tests' raw records in it.
        secured.credential(MASH)
        hub_file = client_settings_file(secured.admin, MASH)
        result = secured.sgb(
            "hub", "subscribe", "mash", "202", "--sink", f"jsonl:{inbox}", "--idle-exit", "5", config=hub_file
        )
    assert result.returncode == 0, result.stderr[-2000:]
    received = [json.loads(line) for line in inbox.read_text().splitlines()]
    assert event["event_id"] in {r["event_id"] for r in received}


def test_sgb_erase_runs_as_its_own_principal_and_reads_no_event(secured: Secured, tmp_path: Path) -> None:
    """A data protection officer erases a child with the ``sgb-erase`` credential, not the admin's:
    the notice reaches the original's recipient; that principal cannot read an event itself."""
    event = domestic_abuse_incident()
    publisher = EventPublisher(secured.credential(POLICE), "POLICE")
    publisher.publish(event)
    publisher.flush()
    filter_settings = secured.credential(FILTER).model_copy(update={"state_dir": tmp_path / "filter"})
    erase_settings = secured.credential(ERASE)
    erase_file = client_settings_file(secured.admin, ERASE)
    inbox = tmp_path / "mash.jsonl"
    secured.credential(MASH)
    hub_file = client_settings_file(secured.admin, MASH)
    child = f"nhs:{event['child']['nhs_number']}"

    def mash_received() -> list[dict[str, object]]:
        result = secured.sgb(
            "hub", "subscribe", "mash", "202", "--sink", f"jsonl:{inbox}", "--idle-exit", "5", config=hub_file
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return [json.loads(line) for line in inbox.read_text().splitlines()]

    with RunningFilter(filter_settings, group_id=f"{PREFIX}sgb-filter", instance="erase"):
        assert event["event_id"] in {r["event_id"] for r in mash_received()}
        erased = secured.sgb("erase", "--child", child, "--yes", config=erase_file)
        assert erased.returncode == 0, erased.stderr[-2000:]
        assert "1 ERASED correction(s) sent" in erased.stdout, erased.stdout
        received = mash_received()
    # The MASH's copy is now a stub with no field of the child, and the notice itself is a line.
    (stub,) = [r for r in received if r["event_id"] == event["event_id"]]
    assert stub.get("erased") is True and "child" not in stub, stub
    notices = [
        r["correction"]["kind"]
        for r in received
        if r["event_id"] != event["event_id"]
        and (r.get("correction") or {}).get("corrects_event_id") == event["event_id"]
    ]
    assert notices == ["ERASED"]
    # Least privilege: the principal that erases reads no event, on ingress or delivery (read as
    # sgb erase reads the ledger: partitions assigned, no group joined).
    # Ingress it may write, so it sees the topic and its fetch is refused; a delivery topic it
    # may not even describe, so the topic stays invisible and nothing arrives.
    assert read_assigned(erase_settings, secured.admin, "sg.ingress.police.v1") == (
        0,
        {KafkaError.TOPIC_AUTHORIZATION_FAILED},
    )
    assert read_assigned(erase_settings, secured.admin, "sg.deliver.mash.202.v1")[0] == 0
    # The same read as the MASH, with its own group: the original's stub and the notice are there.
    mash = secured.credential(MASH)
    assert (
        read_assigned(mash, secured.admin, "sg.deliver.mash.202.v1", mash.topic("sgb-hub-mash-202"))[0] >= 2
    )
    read, errors = read_assigned(erase_settings, secured.admin, "sg.shares.v1")
    assert read >= 1 and not errors


# -- mutual TLS ----------------------------------------------------------------------------------------
def test_mutual_tls_client_certificates_carry_the_same_acls(tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster, base = _start(tmp_path_factory.mktemp("sgb-mtls"), "mtls")
    try:
        admin_file = cluster.admin_settings_file
        assert admin_file is not None
        admin = load_client_settings(admin_file, base)
        apply(admin, load_declaration())
        assert apply_acls(admin, load_declaration()).created
        issue(admin, POLICE, load_declaration())
        police = load_client_settings(client_settings_file(admin, POLICE), base)
        assert police.security_protocol == "SSL" and police.sasl_username is None
        assert produce(police, "sg.ingress.police.v1") is None
        error = produce(police, "sg.ingress.health.v1")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # TLS without a client certificate is refused.
        answered, _ = connection_errors(
            {
                "bootstrap.servers": base.bootstrap,
                "security.protocol": "SSL",
                "ssl.ca.location": str(admin.ssl_ca_location),
            }
        )
        assert not answered
    finally:
        cluster.stop()
