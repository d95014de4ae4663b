"""Compose deployment files, checked offline (no Docker engine here).

The file validates against the Compose specification schema vendored by check-jsonschema;
its structure (images, users, dependencies, health checks, secrets) is asserted;
make-secrets.sh is run (keytool) and makes every secret the file names; the ACLs
kafka-setup.sh grants are the ones ``sgb deploy k8s`` gives the same principals.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from broker.settings import load_settings
from schemas.topics import load_declaration
from sgb.manifests.generate import principals

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose"


# -- Compose ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text(encoding="utf-8")
    )
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(compose)] == []
    broken = copy.deepcopy(compose)
    broken["services"]["filter-1"]["helthcheck"] = broken["services"]["filter-1"].pop("healthcheck")
    assert list(validator.iter_errors(broken)), "the validator does bite"


def test_compose_services_images_dependencies_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    brokers = [f"kafka-{n}" for n in (1, 2, 3)]
    assert set(services) == {
        *brokers,
        "kafka-setup",
        "topics",
        "filter-1",
        "filter-2",
        "connector-police",
        "hub-school-dsl-100000",
    }
    for name in brokers:
        assert services[name]["image"] == "apache/kafka:4.1.1"
        assert "healthcheck" in services[name]
    assert services["kafka-setup"]["depends_on"] == {b: {"condition": "service_healthy"} for b in brokers}
    completed = {"condition": "service_completed_successfully"}
    assert services["topics"]["depends_on"] == {"kafka-setup": completed}
    for name in ("filter-1", "filter-2"):
        command = services[name]["command"]
        assert command[:4] == ["filter", "run", "--group", "sgb-filter"] and command[-1] == name
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
    for name in ("filter-1", "filter-2", "connector-police", "hub-school-dsl-100000"):
        service = services[name]
        assert service["image"] == "sgb:0.1.0"
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert service["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}
    assert services["hub-school-dsl-100000"]["command"][:4] == ["hub", "subscribe", "school_dsl", "100000"]
    assert "--sink" in services["hub-school-dsl-100000"]["command"]
    assert services["connector-police"]["command"][:3] == ["connector", "run", "police"]


def test_compose_runs_nothing_as_root_and_holds_no_secret(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        user = str(service.get("user", ""))
        assert user and user.split(":")[0] not in ("0", "root"), f"{name} must run as an unprivileged user"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"PASSWORD|SECRET|TOKEN|KEY", key), f"{name} sets {key} in plain text"
            if key != "SGB_CONFIG":
                assert not re.search(r"password|secret", str(value), re.IGNORECASE), (name, key)
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), name
    text = (COMPOSE / "compose.yaml").read_text()
    assert not re.search(r"(?i)password\s*[:=]\s*\S", text.replace("password:", "")), "no literal password"
    assert "secrets/" in (COMPOSE / ".gitignore").read_text().split()
    node = (COMPOSE / "kafka-node.sh").read_text()
    for setting in (
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "listener.name.controller.ssl.client.auth=required",
        "allow.everyone.if.no.acl.found=false",
        "transaction.state.log.min.isr=2",
        "min.insync.replicas=2",
        "offsets.topic.replication.factor=3",
    ):
        assert setting in node, setting


def test_make_secrets_makes_every_secret_compose_names(compose: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("keytool") is None:
        pytest.skip("keytool (Java) is not installed")
    script = COMPOSE / "make-secrets.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    out = tmp_path / "secrets"
    out.mkdir()
    result = subprocess.run(
        ["bash", str(script), "--inside", str(out)], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for name, secret in compose["secrets"].items():
        assert (out / Path(secret["file"]).name).is_file(), f"make-secrets.sh does not make {name}"
    assert len((out / "pseudonymisation.key").read_bytes()) == 32
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", (out / "kafka-cluster-id").read_text())
    os.environ["SGB_CONFIG"] = str(out / "sgb-filter.toml")
    try:
        settings = load_settings()
    finally:
        del os.environ["SGB_CONFIG"]
    assert settings.security_protocol == "SASL_SSL" and settings.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.sasl_username == "sgb-filter" and settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == (out / "sgb-filter.password").read_text()


def test_compose_acls_are_the_generators(compose: dict[str, Any]) -> None:
    setup = (COMPOSE / "kafka-setup.sh").read_text()
    table = setup.split('ACLS="', 1)[1].split('"', 1)[0]
    from_script: dict[str, set[tuple[str, str, str, tuple[str, ...]]]] = {}
    kinds = {"topic": "topic", "group": "group", "transactional-id": "transactionalId"}
    for line in table.strip().splitlines():
        principal, resource, pattern, name, operations = line.split()
        from_script.setdefault(principal, set()).add(
            (
                kinds[resource],
                {"prefixed": "prefix", "literal": "literal"}[pattern],
                name,
                tuple(operations.split(",")),
            )
        )
    generated = {
        p.name: {(a.resource, a.pattern, a.name, a.operations) for a in p.acls}
        for p in principals(load_declaration())
    }
    assert set(from_script) == {"sgb-filter", "sgb-connector-police", "sgb-hub-school-dsl-100000"}
    for principal, acls in from_script.items():
        assert acls == generated[principal], principal
