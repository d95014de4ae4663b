"""What every generated Kubernetes manifest shares: the cluster and namespace names, the
``part-of`` label, and the ``metadata`` block.

Split out of :mod:`sgb.manifests.generate` so that the Strimzi resources there and the workloads in
:mod:`sgb.manifests.workloads` build their metadata alike without importing each other.
"""

from __future__ import annotations

from typing import Any

CLUSTER = "sgb"
NAMESPACE = "sgb"
PART_OF = {"app.kubernetes.io/part-of": "sgb"}


def metadata(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """``name`` in the sgb namespace, with ``labels`` (if any) and any other metadata fields."""
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = labels
    meta.update(extra)
    return meta
