"""Kafka plumbing shared by every sgb component: settings, clients, serde, topics, the local runtime."""

from __future__ import annotations

from broker.exceptions import SgbError
from broker.settings import Settings, load_settings

__all__ = ["Settings", "SgbError", "load_settings"]
