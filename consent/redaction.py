"""Redaction driven by the schema's sensitivity tags, compiled once per (rule, event type).

A field is kept for an audience only when every one of its effective tags (its own and
its parents', METADATA aside) is granted and none is prohibited for that audience. A rule
may narrow a granted tag to named fields, or exclude named fields: then a field's tag counts
as granted only where the rule names it. Any
other field is redacted by the rule's action for its ungranted tags; a prohibited tag,
or ungranted tags whose actions differ, always means REMOVE. A new field with the right
tags is handled without touching this code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from consent.exceptions import RedactionError
from schemas.vocabulary import RedactionAction, Tag
from schemas.walker import FieldNode, tag_plan

_KEEP = "keep"


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """What to do with one field that is not simply kept."""

    name: str
    path: str
    kind: str  # "nullable", "array", "map" or "required"
    action: RedactionAction | None  # None: descend into ``sub``
    sub: tuple[FieldPlan, ...] = ()
    mask: str | None = None
    secret_existence: bool = False  # its very presence is sensitive (CONFIDENTIAL_ADDRESS)


Plan = tuple[FieldPlan, ...]


class Compiler:
    """Compiles redaction plans from one top-level schema.

    Args:
        schema: the envelope schema as JSON, tags included.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def compile(
        self,
        granted: frozenset[Tag],
        prohibited: frozenset[Tag],
        actions: Mapping[Tag, RedactionAction],
        details_record: str,
        *,
        only: Mapping[Tag, frozenset[str]] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> Plan:
        """The plan for one audience's view of one event type.

        Args:
            granted: the tags the rule grants.
            prohibited: tags the audience may never receive (hard limits, prohibitions).
            actions: the rule's redaction action per ungranted tag (default REMOVE).
            details_record: the full name of the details branch for the event type.
            only: a granted tag narrowed to named fields (dotted paths): elsewhere it counts
                as not granted.
            exclude: fields (dotted paths) never kept, whatever their tags are granted.
        """
        self._granted = frozenset(granted) - prohibited
        self._prohibited = prohibited
        self._actions = actions
        self._details = details_record
        self._only = dict(only or {})
        self._exclude = exclude
        plan = self._fields(tag_plan(self.schema, details_record))
        return () if plan is _KEEP or isinstance(plan, str) else plan

    def _verdict(self, tags: frozenset[str], path: str) -> RedactionAction | None:
        needed = tags - {Tag.METADATA}
        if not needed:
            return None
        if _named(path, self._exclude, below=False):
            return RedactionAction.REMOVE
        granted = self._granted
        for tag, paths in self._only.items():
            if tag in granted and not _named(path, paths, below=True):
                granted = granted - {tag}
        missing = needed - granted
        if not missing:
            return None
        if tags & self._prohibited:
            return RedactionAction.REMOVE
        chosen = {self._actions.get(Tag(t), RedactionAction.REMOVE) for t in missing}
        return chosen.pop() if len(chosen) == 1 else RedactionAction.REMOVE

    def _fields(self, nodes: tuple[FieldNode, ...]) -> Plan | str:
        plans = [plan for node in nodes if (plan := self._field(node)) is not None]
        return tuple(plans) if plans else _KEEP

    def _field(self, node: FieldNode) -> FieldPlan | None:
        secret = Tag.CONFIDENTIAL_ADDRESS in node.tags
        if node.children is not None:
            return self._container(node, secret)
        if isinstance(node.holds, list):
            msg = f"The schema has no details record {self._details}."
            raise RedactionError(msg)
        action = self._verdict(node.tags, node.path)
        if action is None:
            return None
        mask = node.attributes.get("sgb:mask")
        return FieldPlan(node.name, node.path, node.kind, action, mask=mask, secret_existence=secret)

    def _container(self, node: FieldNode, secret: bool) -> FieldPlan | None:
        removed = FieldPlan(node.name, node.path, node.kind, RedactionAction.REMOVE, secret_existence=secret)
        if (
            node.own_tags
            and node.kind != "required"
            and self._verdict(node.tags, node.path) is RedactionAction.REMOVE
        ):
            return removed
        sub = self._fields(node.children or ())
        if sub is _KEEP:
            return None
        assert isinstance(sub, tuple)
        every_leaf_removed = (
            all(p.action is RedactionAction.REMOVE for p in sub) and len(sub) == node.declared_fields
        )
        if every_leaf_removed and node.kind in ("nullable", "array"):
            return removed
        return FieldPlan(node.name, node.path, node.kind, None, sub=sub, secret_existence=secret)


def _named(path: str, paths: frozenset[str], *, below: bool) -> bool:
    """Whether ``path`` is one of ``paths`` or lies inside one of them; with ``below``, also
    whether one of them lies inside ``path`` (a container holding a named field is kept open)."""
    for named in paths:
        if path == named or path.startswith((named + ".", named + "[].")):
            return True
        if below and named.startswith((path + ".", path + "[].")):
            return True
    return False


@dataclass(slots=True)
class Redacted:
    """The outcome of applying a plan: the copy and the names (never values) of what changed."""

    record: dict[str, Any]
    removed: list[str]
    transformed: list[str]
    generalised: dict[str, str]


class Redactor:
    """Applies compiled plans.

    Args:
        pseudonym_key: the secret key for PSEUDONYMISE (HMAC-SHA256).
    """

    __slots__ = ("_key",)

    def __init__(self, pseudonym_key: bytes) -> None:
        self._key = pseudonym_key

    def apply(self, plan: Plan, record: dict[str, Any], *, recipient: str, at: date | None) -> Redacted:
        """Return a redacted shallow copy of ``record``; raises :class:`RedactionError` on failure."""
        out = Redacted({}, [], [], {})
        try:
            out.record = self._apply(plan, record, out, recipient, at)
        except RedactionError:
            raise
        except Exception as exc:  # fail closed: never fall back to the unredacted event
            msg = f"Redaction failed ({type(exc).__name__})."
            raise RedactionError(msg) from None
        return out

    def _apply(
        self, plan: Plan, record: dict[str, Any], out: Redacted, recipient: str, at: date | None
    ) -> dict[str, Any]:
        copy = dict(record)
        for fp in plan:
            value = copy.get(fp.name)
            if value is None or (fp.kind in ("array", "map") and not value):
                continue
            if fp.action is None:
                if fp.kind == "array":
                    copy[fp.name] = [self._apply(fp.sub, item, out, recipient, at) for item in value]
                else:
                    copy[fp.name] = self._apply(fp.sub, value, out, recipient, at)
            elif fp.action is RedactionAction.REMOVE:
                copy[fp.name] = _empty(fp)
                out.removed.append(fp.path)
            else:
                copy[fp.name] = self._transform(fp, value, out, recipient, at)
        return copy

    def _transform(self, fp: FieldPlan, value: Any, out: Redacted, recipient: str, at: date | None) -> Any:
        action = fp.action
        new: Any = None
        if action is RedactionAction.MASK and isinstance(value, str):
            new = outward_code(value) if fp.mask == "outward_code" else mask_text(value)
        elif (
            action is RedactionAction.GENERALISE
            and isinstance(value, date)
            and not isinstance(value, datetime)
        ):
            if at is not None:
                out.generalised[fp.path] = f"{age_in_years(value, at)} years"
                new = None
        elif action is RedactionAction.GENERALISE and isinstance(value, datetime):
            new = datetime(value.year, value.month, value.day, tzinfo=UTC)
        elif action is RedactionAction.PSEUDONYMISE and isinstance(value, str):
            new = self.pseudonym(value, recipient)
        if new is None and fp.path not in out.generalised:
            copy = _empty(fp)
            out.removed.append(fp.path)
            return copy
        out.transformed.append(fp.path)
        return new

    def pseudonym(self, value: str, recipient: str) -> str:
        """A stable, keyed pseudonym of ``value`` for one recipient; not reversible by it."""
        digest = hmac.new(self._key, f"{recipient}\x00{value}".encode(), hashlib.sha256).digest()
        return "pseud-" + base64.b32encode(digest[:10]).decode().lower()


def _empty(fp: FieldPlan) -> Any:
    if fp.kind == "array":
        return []
    if fp.kind == "map":
        return {}
    if fp.kind == "nullable":
        return None
    msg = f"Field {fp.path} is required by the schema and cannot be withheld."
    raise RedactionError(msg)


_POSTCODE = re.compile(r"^\s*([A-Za-z]{1,2}[0-9][A-Za-z0-9]?)\s*([0-9][A-Za-z]{2})\s*$")


def outward_code(value: str) -> str:
    """A UK postcode reduced to its outward code ('LS1 4AP' -> 'LS1'); other text is masked."""
    match = _POSTCODE.match(value)
    return match.group(1).upper() if match else mask_text(value)


def mask_text(value: str) -> str:
    """Keep the shape, hide the content: letters and digits become '*'."""
    return "".join("*" if ch.isalnum() else ch for ch in value)


def age_in_years(born: date, at: date) -> int:
    """Whole years between ``born`` and ``at``."""
    return at.year - born.year - ((at.month, at.day) < (born.month, born.day))
