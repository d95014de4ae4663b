"""The sgb workloads in the generated Kubernetes manifests: the filter, the connectors, the
hubs, and the NetworkPolicies around them (the Strimzi resources are in :mod:`sgb.manifests.generate`).

The filter runs as a StatefulSet, not a Deployment: each replica needs a stable
``--instance`` name, because the instance names its transactional id and its on-disk state
store. A restarted ``sgb-filter-0`` comes back with the same transactional id, so it fences
its dead predecessor and aborts the transaction it left open at once, instead of every
``read_committed`` reader waiting for that transaction to time out; and its state store on
its own volume only needs to catch up, not be rebuilt.

Connectors and hubs are one-replica Deployments (``Recreate``), each with its own state volume.
"""

from __future__ import annotations

from typing import Any

from broker.cluster.acls import FILTER_GROUP, agencies, hub_name, k8s_name
from broker.cluster.acls import organisations as _organisations
from schemas.topics import TopicDeclaration
from sgb.manifests.base import CLUSTER, PART_OF
from sgb.manifests.base import metadata as _meta

IMAGE = "registry.example.org/sgb/sgb:0.1.0"
HEALTH_PORT = 8081
MLLP_PORT = 2575

# Connectors that have a command today (`sgb connector run health|police`), and how each runs.
CONNECTOR_WORKLOADS: dict[str, list[str]] = {
    "police": [
        "connector",
        "run",
        "police",
        "--source",
        "/var/lib/sgb/drop",
        "--watch",
        "--name",
        "police-file-drop",
        "--mapping",
        "/opt/sgb/mappings/police-domestic-abuse.yaml",
    ],
    "health": [
        "connector",
        "run",
        "health",
        "--source",
        f"mllp://0.0.0.0:{MLLP_PORT}",
        "--name",
        "health-hl7",
    ],
}


def labels_for(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component, **PART_OF}


def _pod_spec(
    user: str,
    args: list[str],
    *,
    state_claim: str | None,
    extra_mounts: list[dict[str, Any]],
    extra_volumes: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    probes: dict[str, Any],
    resources: dict[str, Any],
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod running ``sgb ARGS`` as ``user``: its Kafka client certificate from the Secret the
    User Operator made, the cluster CA, non-root, read-only root file system. The state
    directory is the volume named ``state``: the claim ``state_claim``, or (None) the
    StatefulSet's claim template of that name."""
    mounts = [
        {"name": "kafka-user", "mountPath": "/etc/sgb/kafka-user", "readOnly": True},
        {"name": "kafka-ca", "mountPath": "/etc/sgb/kafka-ca", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "state", "mountPath": "/var/lib/sgb"},
        *extra_mounts,
    ]
    volumes = [
        {"name": "kafka-user", "secret": {"secretName": user, "defaultMode": 0o440}},
        {
            "name": "kafka-ca",
            "secret": {
                "secretName": f"{CLUSTER}-cluster-ca-cert",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        {"name": "tmp", "emptyDir": {}},
        *extra_volumes,
    ]
    if state_claim is not None:
        volumes.append(_claim("state", state_claim))
    container = {
        "name": "sgb",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": [
            {"name": "SGB_BOOTSTRAP_SERVERS", "value": f"{CLUSTER}-kafka-bootstrap:9093"},
            {"name": "SGB_SECURITY_PROTOCOL", "value": "SSL"},
            {"name": "SGB_SSL_CA_LOCATION", "value": "/etc/sgb/kafka-ca/ca.crt"},
            {"name": "SGB_SSL_CERTIFICATE_LOCATION", "value": "/etc/sgb/kafka-user/user.crt"},
            {"name": "SGB_SSL_KEY_LOCATION", "value": "/etc/sgb/kafka-user/user.key"},
            {"name": "SGB_STATE_DIR", "value": "/var/lib/sgb"},
            {"name": "SGB_LOG_FORMAT", "value": "json"},
            *(env or []),
        ],
        "ports": ports,
        **probes,
        "resources": resources,
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "volumes": volumes,
    }


#: How every process with a health endpoint is started in a pod: on all addresses, so the
#: kubelet's probes and a Prometheus scrape reach it.
HEALTH_ARGS = ["--metrics-port", str(HEALTH_PORT), "--metrics-host", "0.0.0.0"]


#: Prometheus's scrape annotations, for a Prometheus that discovers pods by annotation.
SCRAPE = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(HEALTH_PORT),
    "prometheus.io/path": "/metrics",
}


def _http_probes(startup_failures: int | None = None) -> dict[str, Any]:
    """Liveness on ``/livez`` and readiness on ``/readyz`` of the container's ``health`` port."""
    live = {"httpGet": {"path": "/livez", "port": "health"}}
    probes: dict[str, Any] = {
        "livenessProbe": {**live, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 5},
    }
    if startup_failures is not None:
        probes = {
            "startupProbe": {**live, "periodSeconds": 5, "failureThreshold": startup_failures},
            **probes,
        }
    return probes


def _claim(volume: str, claim: str) -> dict[str, Any]:
    return {"name": volume, "persistentVolumeClaim": {"claimName": claim}}


def _pvc(name: str, size: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, labels),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def filter_resources() -> list[dict[str, Any]]:
    """The filter: a StatefulSet of two (stable instance names), its headless Service and a PDB."""
    labels = labels_for("sgb-filter", "filter")
    # Catching up the consent and status topics at start may take minutes on a big cluster.
    probes = _http_probes(startup_failures=120)
    pod = _pod_spec(
        "sgb-filter",
        ["filter", "run", "--group", FILTER_GROUP, *HEALTH_ARGS, "--instance", "$(POD_NAME)"],
        state_claim=None,
        extra_mounts=[{"name": "pseudonymisation-key", "mountPath": "/var/lib/sgb/keys", "readOnly": True}],
        # Every replica must pseudonymise alike: one key, made once by the operator (never committed):
        #   kubectl -n sgb create secret generic sgb-filter-keys \
        #     --from-file=pseudonymisation.key=<(head -c 32 /dev/urandom)
        extra_volumes=[
            {
                "name": "pseudonymisation-key",
                "secret": {"secretName": "sgb-filter-keys", "defaultMode": 0o440},
            }
        ],
        ports=[{"name": "health", "containerPort": HEALTH_PORT}],
        probes=probes,
        resources={"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    )
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta("sgb-filter", labels),
        "spec": {
            "serviceName": "sgb-filter",
            "replicas": 2,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app.kubernetes.io/name": "sgb-filter"}},
            "template": {"metadata": {"labels": labels, "annotations": dict(SCRAPE)}, "spec": pod},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "state"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("sgb-filter", labels),
        "spec": {
            "clusterIP": "None",
            "selector": {"app.kubernetes.io/name": "sgb-filter"},
            "ports": [{"name": "health", "port": HEALTH_PORT, "targetPort": "health"}],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta("sgb-filter", labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "sgb-filter"}}},
    }
    return [statefulset, service, budget]


def _single(
    name: str,
    component: str,
    args: list[str],
    *,
    ports: list[dict[str, Any]],
    probes: dict[str, Any],
    drop_folder: bool = False,
    storage: str = "1Gi",
    scrape: bool = False,
) -> list[dict[str, Any]]:
    """A one-replica Deployment, as Kafka user ``name``, with its own state volume (and a drop
    folder). Recreate, never two at once: a connector's checkpoints and transactional id, a
    hub's sink file, belong to one process."""
    labels = labels_for(name, component)
    claims = [_pvc(f"{name}-state", storage, labels)]
    mounts, volumes = [], []
    if drop_folder:
        claims.append(_pvc(f"{name}-drop", "10Gi", labels))
        mounts.append({"name": "drop", "mountPath": "/var/lib/sgb/drop"})
        volumes.append(_claim("drop", f"{name}-drop"))
    pod = _pod_spec(
        name,
        args,
        state_claim=f"{name}-state",
        extra_mounts=mounts,
        extra_volumes=volumes,
        ports=ports,
        probes=probes,
        resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, labels),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels, **({"annotations": dict(SCRAPE)} if scrape else {})},
                "spec": pod,
            },
        },
    }
    return [*claims, deployment]


def connector_resources(declaration: TopicDeclaration) -> list[dict[str, Any]]:
    """The example connectors: police from a file drop, health as an HL7 v2 (MLLP) listener."""
    out: list[dict[str, Any]] = []
    for agency in agencies(declaration):
        command = CONNECTOR_WORKLOADS.get(agency)
        if command is None:
            continue  # no connector command for this agency yet; its user and topic exist
        name = k8s_name(f"sgb-connector-{agency}")
        args = [*command, *HEALTH_ARGS]
        health = {"name": "health", "containerPort": HEALTH_PORT}
        probes = _http_probes(startup_failures=60)
        if agency == "health":
            out += _single(
                name,
                "connector",
                args,
                ports=[{"name": "mllp", "containerPort": MLLP_PORT}, health],
                probes=probes,
                scrape=True,
            )
            labels = labels_for(name, "connector")
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": _meta(name, labels),
                    "spec": {
                        "selector": {"app.kubernetes.io/name": name},
                        "ports": [{"name": "mllp", "port": MLLP_PORT, "targetPort": "mllp"}],
                    },
                }
            )
        else:
            out += _single(
                name, "connector", args, ports=[health], probes=probes, drop_folder=True, scrape=True
            )
    return out


def hub_resources(declaration: TopicDeclaration) -> list[dict[str, Any]]:
    """A hub subscription per onboarded organisation, writing to a JSON-lines sink on its volume."""
    out: list[dict[str, Any]] = []
    for audience, org in _organisations(declaration):
        name = hub_name(audience, org)
        args = [
            "hub",
            "subscribe",
            audience.lower(),
            org,
            "--sink",
            "jsonl:/var/lib/sgb/inbox.jsonl",
            *HEALTH_ARGS,
        ]
        out += _single(
            name,
            "hub",
            args,
            ports=[{"name": "health", "containerPort": HEALTH_PORT}],
            probes=_http_probes(startup_failures=60),
            scrape=True,
        )
    return out
