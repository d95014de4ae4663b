"""Kubernetes deployment files, checked offline (no Kubernetes cluster here).

The manifests under deploy/k8s are what ``sgb deploy k8s`` makes from deploy/topics.yaml
now; built-in kinds validate against the Kubernetes JSON schemas (kubernetes-validate,
strict); Strimzi kinds against the v1 openAPIV3Schema of the CRDs Strimzi publishes in
``io.strimzi:api:<version>:tests`` on Maven Central, made strict (an unknown field is an
error, as with ``kubectl --validate=strict``); the ACLs say who may do what.

Compose is checked in test_deploy_compose.py, the Dockerfile in test_deploy_dockerfile.py.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from broker.exceptions import SgbError
from broker.settings import Settings
from schemas.topics import delivery_topic, load_declaration
from sgb.cli.deploy import deploy
from sgb.manifests.generate import (
    CLUSTER,
    STRIMZI_VERSION,
    Principal,
    agencies,
    hub_name,
    principals,
    stale_files,
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"


# -- Kubernetes ---------------------------------------------------------------------------------
def _docs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return out


def test_committed_manifests_are_what_the_generator_makes(tmp_path: Path) -> None:
    assert stale_files(K8S, load_declaration()) == [], "run: sgb deploy k8s --output deploy/k8s"
    runner = CliRunner()
    written = runner.invoke(deploy, ["k8s", "--output", str(tmp_path / "k8s")])
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in (tmp_path / "k8s").iterdir()) == sorted(p.name for p in K8S.glob("*.yaml"))
    for path in K8S.glob("*.yaml"):
        assert (tmp_path / "k8s" / path.name).read_text() == path.read_text()
    assert runner.invoke(deploy, ["k8s", "--output", str(K8S), "--check"]).exit_code == 0
    (tmp_path / "k8s" / "20-topics.yaml").write_text("# edited by hand\n")
    stale = runner.invoke(deploy, ["k8s", "--output", str(tmp_path / "k8s"), "--check"])
    assert isinstance(stale.exception, SgbError) and "20-topics.yaml" in str(stale.exception)


def test_builtin_kinds_validate_against_the_kubernetes_schemas() -> None:
    builtin = [
        d for d in _docs() if not d["apiVersion"].startswith(("kafka.strimzi.io/", "monitoring.coreos.com/"))
    ]
    assert {d["kind"] for d in builtin} >= {
        "Namespace",
        "StatefulSet",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for doc in builtin:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(next(d for d in builtin if d["kind"] == "StatefulSet"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):  # the validator does bite
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def strimzi_schemas() -> dict[str, dict[str, Any]]:
    """kind -> strict v1 schema, from Strimzi's CRDs (fetched once into the sgb cache)."""
    folder = Settings().cache_dir / f"strimzi-{STRIMZI_VERSION}"
    jar = folder / f"api-{STRIMZI_VERSION}-tests.jar"
    if not jar.is_file():
        mvn = shutil.which("mvn")
        assert mvn, "Maven is needed to fetch Strimzi's CRDs (apt-get install maven)"
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "dependency:copy",
                f"-Dartifact=io.strimzi:api:{STRIMZI_VERSION}:jar:tests",
                f"-DoutputDirectory={folder}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0 and jar.is_file(), (result.stdout + result.stderr)[-2000:]
    out = {}
    with zipfile.ZipFile(jar) as archive:
        for name in archive.namelist():
            if not (name.startswith("crds/v1/") and name.endswith(".yaml")):
                continue
            crd = yaml.safe_load(archive.read(name))
            for version in crd["spec"]["versions"]:
                if version["name"] == "v1" and version.get("served"):
                    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                    out[crd["spec"]["names"]["kind"]] = _strict(schema)
    return out


def _strict(node: Any) -> Any:
    """An unknown field is an error unless the schema keeps unknown fields on purpose."""
    if isinstance(node, dict):
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


def _strimzi_errors(schemas: dict[str, dict[str, Any]], doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schemas[doc["kind"]])
    return [
        f"{doc['kind']} {doc['metadata']['name']} at {'.'.join(map(str, e.path))}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def test_strimzi_kinds_validate_against_strimzis_crds(strimzi_schemas: dict[str, dict[str, Any]]) -> None:
    strimzi = [d for d in _docs() if d["apiVersion"] == "kafka.strimzi.io/v1"]
    kinds = {d["kind"] for d in strimzi}
    assert kinds == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    errors = [e for doc in strimzi for e in _strimzi_errors(strimzi_schemas, doc)]
    assert errors == []
    user = copy.deepcopy(next(d for d in strimzi if d["kind"] == "KafkaUser"))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    user["spec"]["authentication"]["kind"] = "tls"
    assert len(_strimzi_errors(strimzi_schemas, user)) == 2  # the validator does bite


def test_kraft_cluster_with_node_pools_and_tls() -> None:
    docs = _docs()
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    annotations = kafka["metadata"]["annotations"]
    assert annotations == {"strimzi.io/kraft": "enabled", "strimzi.io/node-pools": "enabled"}
    assert "zookeeper" not in kafka["spec"]
    config = kafka["spec"]["kafka"]["config"]
    assert config["transaction.state.log.min.isr"] == 2 and config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["transaction.state.log.replication.factor"] == 3
    assert all(
        listener["tls"] and listener["authentication"]["type"] == "tls"
        for listener in kafka["spec"]["kafka"]["listeners"]
    )
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    pools = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "KafkaNodePool"}
    assert {tuple(p["roles"]) for p in pools.values()} == {("controller",), ("broker",)}
    assert all(p["replicas"] == 3 for p in pools.values())


def test_one_kafka_topic_per_declared_topic() -> None:
    topics = {
        d["spec"].get("topicName", d["metadata"]["name"]): d for d in _docs() if d["kind"] == "KafkaTopic"
    }
    declared = load_declaration().all_topics()
    assert set(topics) == {spec.name for spec in declared}
    for spec in declared:
        body = topics[spec.name]["spec"]
        assert (body["partitions"], body["replicas"]) == (spec.partitions, spec.replication_factor)
        assert body.get("config", {}) == spec.config
        assert topics[spec.name]["metadata"]["labels"] == {"strimzi.io/cluster": CLUSTER}


def _allowed(principal: Principal, resource: str, name: str, operation: str) -> bool:
    return any(
        acl.resource == resource
        and operation in acl.operations
        and (name == acl.name if acl.pattern == "literal" else name.startswith(acl.name))
        for acl in principal.acls
    )


def test_acls_give_each_principal_only_its_part() -> None:
    declaration = load_declaration()
    everyone = {p.name: p for p in principals(declaration)}
    users = {d["metadata"]["name"]: d for d in _docs() if d["kind"] == "KafkaUser"}
    assert set(users) == set(everyone)
    assert all(u["spec"]["authentication"]["type"] == "tls" for u in users.values())
    ingress = [f"sg.ingress.{agency}.v1" for agency in agencies(declaration)]
    deliveries = [t.name for t in declaration.all_topics() if t.name.startswith("sg.deliver.")]
    assert len(ingress) == 4
    assert len(deliveries) == sum(map(len, declaration.deliveries.organisations.values()))

    for agency in agencies(declaration):
        connector = everyone[f"sgb-connector-{agency.replace('_', '-')}"]
        for topic in ingress:
            assert _allowed(connector, "topic", topic, "Write") == (topic == f"sg.ingress.{agency}.v1")
            assert not _allowed(connector, "topic", topic, "Read")
        assert not any(_allowed(connector, "topic", t, op) for t in deliveries for op in ("Read", "Write"))
        assert not _allowed(connector, "topic", "sg.audit.decisions.v1", "Write")
        assert _allowed(connector, "transactionalId", f"sgb-connector-{agency}-csv", "Write")

    orgs = declaration.deliveries.organisations
    for audience, codes in orgs.items():
        for org in codes:
            hub = everyone[hub_name(audience, org)]
            own = delivery_topic(audience, org)
            for topic in deliveries:
                assert _allowed(hub, "topic", topic, "Read") == (topic == own)
                assert not _allowed(hub, "topic", topic, "Write")
            assert not any(_allowed(hub, "topic", t, "Read") for t in ingress)
            assert _allowed(hub, "group", f"sgb-hub-{audience.lower()}-{org}", "Read")
            assert not _allowed(hub, "group", "sgb-filter", "Read")

    filt = everyone["sgb-filter"]
    for topic in [*ingress, "sg.consent.v1", "sg.status.v1"]:
        assert _allowed(filt, "topic", topic, "Read")
    for topic in [*deliveries, "sg.audit.decisions.v1", "sg.status.v1", "sg.dlq.v1"]:
        assert _allowed(filt, "topic", topic, "Write")
    assert not any(_allowed(filt, "topic", t, "Read") for t in deliveries)
    assert not any(_allowed(filt, "topic", t, "Write") for t in ingress)
    assert _allowed(filt, "transactionalId", "sgb-filter-sgb-filter-0", "Write")  # <group>-<instance>
    assert _allowed(filt, "group", "sgb-filter", "Read")
    assert _allowed(filt, "group", "sgb-filter-state-sgb-filter-0", "Read")
    # Only the filter writes deliveries and audit; only hubs read deliveries.
    for principal in everyone.values():
        if principal.role != "filter":
            assert not _allowed(principal, "topic", "sg.audit.decisions.v1", "Write")
            assert not any(_allowed(principal, "topic", t, "Write") for t in deliveries)
        if principal.role != "hub":
            assert not any(_allowed(principal, "topic", t, "Read") for t in deliveries)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def test_workloads_filter_statefulset_probes_resources_non_root() -> None:
    docs = _docs()
    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    filt = next(d for d in workloads if d["metadata"]["name"] == "sgb-filter")
    assert filt["kind"] == "StatefulSet" and filt["spec"]["replicas"] == 2
    container = _containers(filt)[0]
    assert container["args"][-2:] == ["--instance", "$(POD_NAME)"]  # stable names: sgb-filter-0, -1
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["ports"] == [{"name": "health", "containerPort": 8081}]
    names = {d["metadata"]["name"] for d in workloads}
    assert {"sgb-connector-police", "sgb-connector-health"} <= names
    organisations = load_declaration().deliveries.organisations
    assert {hub_name(a, o) for a, orgs in organisations.items() for o in orgs} <= names
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        assert workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sgb"
        for c in _containers(workload):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            assert "livenessProbe" in c and "readinessProbe" in c
            assert not any("value" in e and re.search(r"PASSWORD|SECRET|TOKEN", e["name"]) for e in c["env"])
        if workload["kind"] == "Deployment":
            assert workload["spec"]["replicas"] == 1 and workload["spec"]["strategy"]["type"] == "Recreate"
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets are never generated or committed"


def test_network_policies_deny_by_default_and_open_kafka_and_dns() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in _docs() if d["kind"] == "NetworkPolicy"}
    deny = policies["sgb-default-deny"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "sgb"}}
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    egress = policies["sgb-egress-kafka-dns"]["egress"]
    assert {p["port"] for rule in egress for p in rule["ports"]} == {9093, 53}


def test_prometheus_scrapes_the_filter_hubs_and_connectors() -> None:
    docs = _docs()
    monitors = {d["kind"]: d for d in docs if d["apiVersion"] == "monitoring.coreos.com/v1"}
    assert set(monitors) == {"ServiceMonitor", "PodMonitor"}
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "sgb-filter")
    selector = monitors["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitors["ServiceMonitor"]["spec"]["endpoints"][0]["port"] in {
        p["name"] for p in service["spec"]["ports"]
    }
    scraped = [d for d in docs if d["kind"] == "Deployment"]  # every hub and connector
    assert any("connector" in d["metadata"]["name"] for d in scraped)
    scraped.append(next(d for d in docs if d["kind"] == "StatefulSet"))
    pod_selector = monitors["PodMonitor"]["spec"]["selector"]["matchLabels"]
    for workload in scraped:
        template = workload["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        port = int(template["metadata"]["annotations"]["prometheus.io/port"])
        assert {"name": "health", "containerPort": port} in _containers(workload)[0]["ports"]
        if workload["kind"] == "Deployment":
            assert pod_selector.items() <= template["metadata"]["labels"].items()
            components = monitors["PodMonitor"]["spec"]["selector"]["matchExpressions"][0]["values"]
            assert template["metadata"]["labels"]["app.kubernetes.io/component"] in components
