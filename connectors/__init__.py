"""Agency connectors: source readers and pure mapping functions, publishing to ingress topics."""

from __future__ import annotations

from connectors.publisher import EventPublisher, ingress_topic

__all__ = ["EventPublisher", "ingress_topic"]
