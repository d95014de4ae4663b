"""Around the sgb workloads: the Prometheus Operator's monitors and the NetworkPolicies (deny by
default; Kafka, DNS, MLLP and the health port opened)."""

from __future__ import annotations

from typing import Any

from sgb.manifests.base import CLUSTER, PART_OF
from sgb.manifests.base import metadata as _meta
from sgb.manifests.workloads import HEALTH_PORT, MLLP_PORT, labels_for


def monitoring_resources() -> list[dict[str, Any]]:
    """For the Prometheus Operator: a ServiceMonitor for the filter's Service and a PodMonitor for
    the hubs and connectors (one Deployment each, no Service), both scraping ``/metrics`` on the
    health port."""
    endpoint = {"port": "health", "path": "/metrics", "interval": "30s"}
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": _meta("sgb-filter", labels_for("sgb-filter", "filter")),
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "sgb-filter"}},
                "endpoints": [endpoint],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": _meta("sgb-hubs-and-connectors", dict(PART_OF)),
            "spec": {
                "selector": {
                    "matchLabels": dict(PART_OF),
                    "matchExpressions": [
                        {
                            "key": "app.kubernetes.io/component",
                            "operator": "In",
                            "values": ["hub", "connector"],
                        }
                    ],
                },
                "podMetricsEndpoints": [endpoint],
            },
        },
    ]


def _policy(name: str, selector: dict[str, str], **rules: Any) -> dict[str, Any]:
    types = [t for t in ("Ingress", "Egress") if t.lower() in rules] or ["Ingress", "Egress"]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name),
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": types, **rules},
    }


def network_policies() -> list[dict[str, Any]]:
    """Deny by default for sgb's pods; let them reach Kafka's TLS listener and DNS; let the
    health connector take MLLP connections and the filter, hubs and connectors answer health checks."""
    kafka_pods = {"podSelector": {"matchLabels": {"strimzi.io/cluster": CLUSTER, "strimzi.io/kind": "Kafka"}}}
    dns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    return [
        _policy("sgb-default-deny", dict(PART_OF)),
        _policy(
            "sgb-egress-kafka-dns",
            dict(PART_OF),
            egress=[
                {"to": [kafka_pods], "ports": [{"protocol": "TCP", "port": 9093}]},
                {"to": [dns], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            ],
        ),
        _policy(
            "sgb-filter-health",
            {"app.kubernetes.io/name": "sgb-filter"},
            ingress=[{"ports": [{"protocol": "TCP", "port": HEALTH_PORT}]}],
        ),
        _policy(
            "sgb-hub-health",
            {"app.kubernetes.io/component": "hub", **PART_OF},
            ingress=[{"ports": [{"protocol": "TCP", "port": HEALTH_PORT}]}],
        ),
        _policy(
            "sgb-connector-health",
            {"app.kubernetes.io/component": "connector", **PART_OF},
            ingress=[{"ports": [{"protocol": "TCP", "port": HEALTH_PORT}]}],
        ),
        # The hospital integration engine is outside the cluster: narrow this to its address.
        _policy(
            "sgb-health-mllp",
            {"app.kubernetes.io/name": "sgb-connector-health"},
            ingress=[{"ports": [{"protocol": "TCP", "port": MLLP_PORT}]}],
        ),
    ]
