"""Kafka plumbing shared by every sgb component: settings, clients, serde, topics, the local runtime.

``Settings`` and ``load_settings`` are imported on first use, so a module that needs only a
small part of the plumbing (the key directory for ``sgb policy evaluate``) does not pay for
the settings model and its dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.exceptions import SgbError

if TYPE_CHECKING:
    from broker.settings import Settings, load_settings

__all__ = ["Settings", "SgbError", "load_settings"]


def __getattr__(name: str) -> Any:
    if name in ("Settings", "load_settings"):
        from broker import settings

        return getattr(settings, name)
    msg = f"module 'broker' has no attribute {name!r}"
    raise AttributeError(msg)
