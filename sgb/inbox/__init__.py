"""The inbox page of ``sgb hub serve``: what arrived for one hub, readable by a practitioner."""

from __future__ import annotations

from sgb.inbox.app import create_app, rule_descriptions
from sgb.inbox.feed import InboxFeed
from sgb.inbox.store import InboxStore

__all__ = ["InboxFeed", "InboxStore", "create_app", "rule_descriptions"]
