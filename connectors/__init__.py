"""Agency connectors: source readers and pure mapping functions, publishing to ingress topics."""

from __future__ import annotations

from connectors.runtime.publisher import EventPublisher

__all__ = ["EventPublisher"]
