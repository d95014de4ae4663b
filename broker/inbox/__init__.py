"""The inbox page of ``sgb hub serve``: what arrived for one hub, readable by a practitioner."""

from __future__ import annotations

from broker.inbox.app import create_app, rule_descriptions
from broker.inbox.feed import InboxFeed
from broker.inbox.store import InboxStore

__all__ = ["InboxFeed", "InboxStore", "create_app", "rule_descriptions"]
