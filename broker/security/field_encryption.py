"""Per-child field encryption: every personal field sealed at rest in Kafka.

Before Avro encoding, every string leaf under a field with one of :data:`ENCRYPTED_TAGS`
(every tag but ``METADATA``: identifiers, names, contact and addresses, case detail,
health, third parties, narrative; the tags in ``schemas/avro``, so a new tagged field is
covered without touching this code) is replaced by a text token::

    sgbenc:v1:<base64url, unpadded, of  hn | sealed-kid | n | ciphertext>

A nullable leaf that is not text and identifies a person (tagged ``DATE_OF_BIRTH``) cannot
hold a token: it is set to null and its token kept in the event's optional
``sealed_values`` map under its path (``child.date_of_birth``), the only schema change.

``n`` and ``hn`` are 12-byte random nonces. The ciphertext is AES-256-GCM under the child's
data key (DEK, :mod:`broker.security.key_vault`) with associated data ``sgbenc:v1 | kid | event id |
field path`` (paths like ``child.confidential_address.line1`` or
``details.locations_of_concern[0]``), so a token moved to another event, child or field
fails authentication. ``sealed-kid`` is the DEK's id sealed (AES-GCM, random nonce) with a
vault-wide key, so a reader with the vault finds the DEK without the child's key (which
redaction may remove), while anyone else reading topics cannot link one child's events.

Readers never fail on a token and never show one as text: a field whose DEK was destroyed
reads :data:`ERASED` (a sealed value: null); a token that fails authentication reads
:data:`UNREADABLE` (a sealed value: null). Other non-string leaves (enumerated codes,
booleans, event times) stay as they are: they describe the event, not who it is about.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.exceptions import FieldUnreadable, KeyErased
from broker.logs import get_logger
from broker.security.key_directory import KeyProvider
from broker.security.key_vault import KID_BYTES, KeyVault
from schemas.validation import SEALED_PREFIX
from schemas.walker import FieldNode, details_record_name, tag_plan

log = get_logger("broker.fieldcrypt")

PREFIX = SEALED_PREFIX
ERASED = "[erased]"
UNREADABLE = "[unreadable]"
#: Every tag that marks personal data (all but METADATA): string leaves under them are sealed.
ENCRYPTED_TAGS = frozenset(
    {
        "CASE_DETAIL",
        "CONFIDENTIAL_ADDRESS",
        "CONTACT",
        "CRIMINAL_OFFENCE",
        "DATE_OF_BIRTH",
        "HEALTH",
        "IDENTIFIER",
        "MENTAL_HEALTH",
        "NAME",
        "NARRATIVE",
        "SEXUAL_HEALTH",
        "SPECIAL_CATEGORY",
        "THIRD_PARTY",
    }
)
#: Non-string leaves that are sealed into ``sealed_values`` (they identify a person).
SEALED_VALUE_TAGS = frozenset({"DATE_OF_BIRTH"})
#: The envelope field that holds the tokens of sealed non-string leaves, by path.
SEALED_VALUES = "sealed_values"
_SEALED_KID = 12 + KID_BYTES + 16
_KID_AAD = b"sgbenc:v1:kid"

# A plan node: "leaf" (a string to seal), "value" (a nullable non-string leaf sealed into
# ``sealed_values``), ("record", {name: node}) or ("array", node).
Node = Any


class Plan:
    """Which paths of an event are sealed, compiled once per event type from the tag plan
    (:func:`schemas.walker.tag_plan`): every string leaf whose effective tags include one of
    ``ENCRYPTED_TAGS``, and every nullable leaf tagged with one of ``SEALED_VALUE_TAGS``.

    Args:
        schema: the SafeguardingEvent envelope, named types inlined (``schemas.load``).
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self._details: dict[str, Node] = {}

    def for_event_type(self, event_type: str) -> Node:
        """The plan of one event type (``details`` resolved to its record)."""
        plan = self._details.get(event_type)
        if plan is None:
            fields = tag_plan(self._schema, details_record_name(event_type))
            plan = self._details[event_type] = _record(fields)
        return plan


def _record(fields: tuple[FieldNode, ...]) -> Node:
    sub = {f.name: node for f in fields if (node := _node(f)) is not None}
    return ("record", sub) if sub else None


def _node(field: FieldNode) -> Node:
    if field.children is not None:
        inner = _record(field.children)
    elif field.kind == "map" or not ENCRYPTED_TAGS & field.tags:
        inner = None
    elif field.holds == "string":
        inner = "leaf"
    elif field.kind == "nullable" and SEALED_VALUE_TAGS & field.tags:
        inner = "value"
    else:
        inner = None
    if field.kind == "array":
        return ("array", inner) if inner is not None else None
    return inner


def _walk(
    value: Any,
    node: Node,
    path: str,
    leaf: Callable[[str, Any], Any],
    other: Callable[[str, Any], Any] | None = None,
) -> Any:
    """A copy of ``value`` with ``leaf(path, text)`` applied to each planned string leaf and
    ``other(path, value)`` to each planned non-string one (kept as it is without ``other``)."""
    if value is None or node is None:
        return value
    if node == "leaf":
        return leaf(path, value) if isinstance(value, str) else value
    if node == "value":
        return other(path, value) if other is not None else value
    kind, sub = node
    if kind == "array":
        return [_walk(item, sub, f"{path}[{i}]", leaf, other) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    copy = dict(value)
    for name, child in sub.items():
        if name in copy:
            copy[name] = _walk(copy[name], child, f"{path}.{name}" if path else name, leaf, other)
    return copy


def _value_text(value: Any) -> str:
    """A non-string leaf as the text that is sealed (a date keeps its type)."""
    if isinstance(value, date):
        return "d:" + value.isoformat()
    return "j:" + json.dumps(value)


def _value_of(text: str) -> Any:
    if text.startswith("d:"):
        return date.fromisoformat(text[2:])
    if text.startswith("j:"):
        return json.loads(text[2:])
    raise FieldUnreadable


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _put(event: dict[str, Any], path: str, value: Any) -> bool:
    """Set the leaf at ``path`` (``related_people[0].date_of_birth``) of ``event`` (copied
    containers only); False when the path does not lead to a field that is there."""
    steps: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
    here: Any = event
    for step in steps[:-1]:
        if isinstance(step, int):
            if not isinstance(here, list) or step >= len(here):
                return False
        elif not isinstance(here, dict) or step not in here:
            return False
        here = here[step]
    last = steps[-1] if steps else None
    if not isinstance(here, dict) or not isinstance(last, str) or last not in here:
        return False
    here[last] = value
    return True


def _walk_tokens(value: Any, path: str, leaf: Callable[[str, str], Any]) -> Any:
    """A copy of ``value`` with ``leaf(path, token)`` applied to every token, wherever it is."""
    if isinstance(value, str):
        return leaf(path, value) if value.startswith(PREFIX) else value
    if isinstance(value, dict):
        return {k: _walk_tokens(v, f"{path}.{k}" if path else k, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_tokens(v, f"{path}[{i}]", leaf) for i, v in enumerate(value)]
    return value


class FieldCipher:
    """Seals and opens the tagged fields of events with per-child data keys.

    Args:
        vault: where the data keys are.
        keys: the key provider; its ``kid-seal`` secret seals key ids inside tokens.
        schema: the SafeguardingEvent envelope (``schemas.load("SafeguardingEvent")``).
    """

    def __init__(self, vault: KeyVault, keys: KeyProvider, schema: Mapping[str, Any]) -> None:
        self.vault = vault
        self._kid_seal = AESGCM(keys.secret("kid-seal"))
        self._plan = Plan(schema)
        self._aeads: dict[bytes, AESGCM] = {}

    # -- one value -------------------------------------------------------------------------
    def open_text(self, event_id: str, path: str, token: str) -> str:
        """The text of a token; raises :class:`KeyErased` or :class:`FieldUnreadable`."""
        return self._opener(event_id)(path, token)

    def _aead(self, dek: bytes) -> AESGCM:
        aead = self._aeads.get(dek)
        if aead is None:
            if len(self._aeads) > 10_000:
                self._aeads.clear()
            aead = self._aeads[dek] = AESGCM(dek)
        return aead

    def _sealer(self, child: str, event_id: str) -> Callable[[str, str], str]:
        """Seals the fields of one event: one key lookup and one sealed key id per event."""
        kid, dek = self.vault.data_key(child)
        aead = self._aead(dek)
        hn = os.urandom(12)
        head = hn + self._kid_seal.encrypt(hn, kid, _KID_AAD)

        def seal(path: str, text: str) -> str:
            nonce = os.urandom(12)
            body = aead.encrypt(nonce, text.encode(), _aad(kid, event_id, path))
            return PREFIX + base64.urlsafe_b64encode(head + nonce + body).rstrip(b"=").decode()

        return seal

    def _opener(self, event_id: str) -> Callable[[str, str], str]:
        """Opens the tokens of one event, looking each sealed key id up once."""
        keys: dict[bytes, tuple[bytes, AESGCM | None]] = {}

        def open_(path: str, token: str) -> str:
            raw = _decode(token)
            if len(raw) < _SEALED_KID + 12 + 16:
                raise FieldUnreadable
            head = raw[:_SEALED_KID]
            found = keys.get(head)
            if found is None:
                try:
                    kid = self._kid_seal.decrypt(head[:12], head[12:], _KID_AAD)
                except InvalidTag:
                    raise FieldUnreadable from None
                dek = self.vault.key_by_id(kid)
                found = keys[head] = (kid, self._aead(dek) if dek is not None else None)
            kid, aead = found
            if aead is None:
                raise KeyErased
            at = _SEALED_KID
            try:
                return aead.decrypt(raw[at : at + 12], raw[at + 12 :], _aad(kid, event_id, path)).decode()
            except (InvalidTag, UnicodeDecodeError):
                raise FieldUnreadable from None

        return open_

    # -- whole events ----------------------------------------------------------------------
    def seal(self, event: Mapping[str, Any], child: str) -> dict[str, Any]:
        """A copy of ``event`` with every tagged string sealed and every sealed-value leaf moved,
        sealed, into ``sealed_values`` (tokens already there are kept)."""
        plan = self._plan.for_event_type(str(event["event_type"]))
        sealer: list[Callable[[str, str], str]] = []
        values: dict[str, str] = dict(event.get(SEALED_VALUES) or {})

        def leaf(path: str, text: str) -> str:
            if text.startswith(PREFIX):
                return text
            if not sealer:
                sealer.append(self._sealer(child, str(event["event_id"])))
            return sealer[0](path, text)

        def other(path: str, value: Any) -> None:
            values[path] = leaf(path, _value_text(value))

        out: dict[str, Any] = _walk(dict(event), plan, "", leaf, other)
        if values or SEALED_VALUES in out:
            out[SEALED_VALUES] = values or None
        return out

    def is_sealed(self, event: Mapping[str, Any]) -> bool:
        """Whether every tagged string of ``event`` is already a token and no sealed-value leaf
        is in clear."""
        clear: list[str] = []

        def leaf(path: str, text: str) -> str:
            if not text.startswith(PREFIX):
                clear.append(path)
            return text

        def other(path: str, value: Any) -> Any:
            clear.append(path)
            return value

        _walk(event, self._plan.for_event_type(str(event["event_type"])), "", leaf, other)
        return not clear

    def reveal(
        self, event: Mapping[str, Any], *, erased: Any = ERASED, unreadable: Any = UNREADABLE
    ) -> dict[str, Any]:
        """A copy of ``event`` with every token opened; erased and unreadable ones replaced
        (a sealed value put back in its field, or left null when erased or unreadable)."""
        event_id = str(event.get("event_id"))
        failed: list[str] = []
        open_ = self._opener(event_id)

        def leaf(path: str, token: str) -> Any:
            try:
                return open_(path, token)
            except KeyErased:
                return erased
            except FieldUnreadable:
                failed.append(path)
                return unreadable

        values = event.get(SEALED_VALUES) or {}
        out: dict[str, Any] = _walk_tokens(
            {**event, SEALED_VALUES: None} if values else dict(event), "", leaf
        )
        for path, token in values.items():
            text = leaf(path, token) if isinstance(token, str) and token.startswith(PREFIX) else unreadable
            try:
                value = (
                    _value_of(text) if isinstance(text, str) and text not in (ERASED, UNREADABLE) else None
                )
            except (FieldUnreadable, ValueError):
                failed.append(path)
                value = None
            if not _put(out, path, value):
                failed.append(path)
        if failed:
            log.warning(
                "encrypted field failed authentication; shown as unreadable",
                event_id=event_id,
                count=len(failed),
            )
        return out

    def has_tokens(self, event: Mapping[str, Any]) -> bool:
        """Whether any string in ``event`` is a token (sealed values included)."""
        found: list[str] = []
        _walk_tokens(event, "", lambda path, token: found.append(path))
        return bool(found)


def _aad(kid: bytes, event_id: str, path: str) -> bytes:
    return b"sgbenc:v1\x00" + kid + b"\x00" + event_id.encode() + b"\x00" + path.encode()


def _decode(token: str) -> bytes:
    text = token[len(PREFIX) :]
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise FieldUnreadable from None
