"""The local CA's certificates, the secured broker's configuration and the ACL declaration."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.cluster.acl_apply import UNPREFIXED, bindings
from broker.cluster.acls import SCHEMA_READER_GROUP, principal_names, principals
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.security import BrokerSecurity, load_client_settings
from broker.cluster.tls import LocalCA, subject_cn
from broker.exceptions import KafkaRuntimeError
from broker.settings import Settings
from schemas.topics import load_declaration


def _certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_ca_signs_a_broker_certificate_for_loopback(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls").ensure()
    issued = ca.issue("sgb-broker", tmp_path / "tls", server=True)
    leaf, root = _certs(issued.cert)
    assert root == _certs(ca.cert_path)[0]
    algorithm = ec.ECDSA(leaf.signature_hash_algorithm)
    root.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, algorithm)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage and ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert subject_cn(issued.cert) == "sgb-broker"
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The broker's PEM key store: the key made at run time, then the chain.
    bundle = issued.bundle.read_bytes()
    key = serialization.load_pem_private_key(bundle, password=None)
    assert key.public_key() == leaf.public_key()
    assert bundle.index(b"PRIVATE KEY") < bundle.index(b"CERTIFICATE")
    assert _certs(issued.bundle) == [leaf, root]


def test_keys_and_folder_are_owner_only(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls").ensure()
    issued = ca.issue("sgb-connector-police", tmp_path / "client")
    for path in (ca.key_path, ca.cert_path, issued.key, issued.cert, issued.bundle):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700


def test_client_certificate_is_not_a_server_certificate(tmp_path: Path) -> None:
    issued = LocalCA(tmp_path / "tls").issue("sgb-hub-mash-202", tmp_path / "c")
    leaf = _certs(issued.cert)[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sgb-hub-mash-202"
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_reissuing_does_not_replace_the_ca(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls").ensure()
    before = ca.cert_path.read_bytes()
    first = ca.issue("a", tmp_path / "c").key.read_bytes()
    second = ca.issue("a", tmp_path / "c").key.read_bytes()
    assert ca.ensure().cert_path.read_bytes() == before and first != second


@pytest.mark.parametrize("mode", ["sasl_ssl", "mtls"])
def test_secured_broker_config_enforces_acls(tmp_path: Path, mode: str) -> None:
    settings = Settings(state_dir=tmp_path, kafka_port=39000)
    security = BrokerSecurity(settings, tmp_path / "kafka", mode)  # type: ignore[arg-type]
    admin_file = security.prepare("127.0.0.1:39000")
    config = security.node_config(39000, 39001)
    assert config["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:sgb-broker;User:sgb-admin"
    assert config["listener.security.protocol.map"].endswith("CONTROLLER:SSL")
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert "PLAINTEXT" not in config["listeners"]
    admin = load_client_settings(admin_file, settings)
    assert admin.bootstrap == "127.0.0.1:39000" and admin.ssl_ca_location == security.ca.cert_path
    if mode == "sasl_ssl":
        assert admin.security_protocol == "SASL_SSL" and admin.sasl_username == "sgb-admin"
        # A rotated password must not leave old sessions producing for ten minutes (issue 20, item 9).
        assert int(config["connections.max.reauth.ms"]) <= 60_000
        assert security.format_args()[0] == "--add-scram"
    else:
        assert admin.security_protocol == "SSL"
        assert config["listener.name.client.ssl.client.auth"] == "required"
        assert admin.ssl_certificate_location and subject_cn(admin.ssl_certificate_location) == "sgb-admin"
        assert security.format_args() == []
    assert admin_file.stat().st_mode & 0o777 == 0o600


def test_security_setting_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(KafkaRuntimeError, match="not one of"):
        LocalKafka(Settings(state_dir=tmp_path), 1, "kerberos")


def test_plaintext_runtime_is_unchanged(tmp_path: Path) -> None:
    cluster = LocalKafka(Settings(state_dir=tmp_path, kafka_port=39010))
    assert cluster.security is None and cluster.admin_settings_file is None
    config = cluster.nodes[0].config()
    assert config["listeners"].startswith("PLAINTEXT://127.0.0.1:39010")
    assert "authorizer.class.name" not in config


# -- the ACL declaration ---------------------------------------------------------------------------
def _by_name() -> dict[str, set[tuple[str, str, str, str]]]:
    settings = Settings(topic_prefix="")
    out: dict[str, set[tuple[str, str, str, str]]] = {}
    for b in bindings(settings, load_declaration()):
        rule = (b.operation, b.resource, b.name, b.pattern)
        out.setdefault(b.principal.removeprefix("User:"), set()).add(rule)
    return out


def test_a_connector_writes_only_its_own_ingress_topic() -> None:
    police = _by_name()["sgb-connector-police"]
    writes = {(name, pattern) for op, res, name, pattern in police if op == "Write" and res == "topic"}
    assert writes == {
        ("sg.ingress.police.v1", "literal"),
        ("sg.dlq.v1", "literal"),
        ("sg.schemas.v1", "literal"),
        ("sg.checkpoints.v1", "literal"),
    }
    assert not any(op == "Read" and name.startswith("sg.ingress.") for op, _, name, _ in police)


def test_a_hub_reads_only_its_own_delivery_topic_and_writes_no_delivery() -> None:
    hub = _by_name()["sgb-hub-school-dsl-100000"]
    reads = {name for op, res, name, _ in hub if op == "Read" and res == "topic"}
    assert reads == {"sg.deliver.school_dsl.100000.v1", "sg.schemas.v1"}
    assert not any(op == "Write" and name.startswith("sg.deliver.") for op, _, name, _ in hub)
    assert not any(op == "Write" and name == "sg.schemas.v1" for op, _, name, _ in hub), (
        "hubs only look schemas up"
    )
    groups = {name for op, res, name, _ in hub if res == "group"}
    assert groups == {"sgb-hub-school_dsl-100000", "sgb-hub-school_dsl-100000-inbox", SCHEMA_READER_GROUP}


def test_only_the_filter_reads_ingress_and_writes_deliveries_audit_and_status() -> None:
    for name, acls in _by_name().items():
        reads = {n for op, r, n, _ in acls if op == "Read" and r == "topic"}
        writes = {n for op, r, n, _ in acls if op == "Write" and r == "topic"}
        reads_ingress = any(n.startswith("sg.ingress.") for n in reads)
        writes_filter_output = any(
            n.startswith("sg.deliver.") or n == "sg.audit.decisions.v1" for n in writes
        )
        assert reads_ingress == (name == "sgb-filter"), name
        assert writes_filter_output == (name == "sgb-filter"), name
        # sgb erase tombstones the child's status records; nobody else writes status.
        assert ("sg.status.v1" in writes) == (name in ("sgb-filter", "sgb-erase")), name


def test_the_erase_principal_reads_no_event() -> None:
    acls = _by_name()["sgb-erase"]
    reads = {n for op, r, n, _ in acls if op == "Read" and r == "topic"}
    assert reads == {"sg.shares.v1", "sg.consent.v1", "sg.status.v1", "sg.identity.links.v1", "sg.schemas.v1"}
    writes = {n for op, r, n, _ in acls if op == "Write" and r == "topic"}
    assert writes == {"sg.ingress.", "sg.consent.v1", "sg.status.v1", "sg.identity.links.v1"}


def test_the_prefix_applies_to_names_as_the_running_code_uses_them() -> None:
    found = bindings(Settings(topic_prefix="env1."), load_declaration())
    names = {(b.resource, b.name) for b in found}
    assert ("topic", "env1.sg.ingress.police.v1") in names
    assert ("group", "env1.sgb-hub-mash-202") in names
    assert ("transactionalId", "env1.sgb-connector-police") in names
    assert ("group", SCHEMA_READER_GROUP) in names  # the embedded registry's group has no prefix
    assert not any(n.startswith("sg.") for _, n in names)


def test_every_principal_is_one_declared_workload() -> None:
    declaration = load_declaration()
    names = principal_names(declaration)
    assert names[0] == "sgb-admin" and len(names) == len(set(names))
    roles = [p.role for p in principals(declaration)]
    assert roles.count("filter") == 1 and roles.count("connector") == 4 and roles.count("operator") == 1
    assert roles.count("hub") == sum(len(orgs) for orgs in declaration.deliveries.organisations.values())


def test_storage_formatted_for_one_security_is_not_started_as_another(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    (home / "data").mkdir(parents=True)
    (home / "data" / "meta.properties").write_text("cluster.id=abc\n")
    (home / "cluster.json").write_text('{"brokers": 1, "security": "sasl_ssl"}\n')
    settings = Settings(state_dir=tmp_path, kafka_port=39020)
    assert LocalKafka(settings).security_mode == "sasl_ssl"  # what it last ran
    with pytest.raises(KafkaRuntimeError, match="formatted for security sasl_ssl, not mtls"):
        LocalKafka(settings, 1, "mtls").start()


def test_every_name_without_the_prefix_is_one_apply_recognises() -> None:
    """An ACL on a name the prefix is not put in front of must still count as this
    environment's, or `topics apply --check` reports it missing right after applying it."""
    unprefixed = {a.name for p in principals(load_declaration()) for a in p.acls if not a.prefixed}
    assert unprefixed and unprefixed <= UNPREFIXED
