"""Where field encryption plugs into publishers, the filter and hubs (a few calls each).

* Connectors seal at publish (:func:`publisher_cipher`), when ``SGB_FIELD_ENCRYPTION=on``.
* The filter (:class:`FilterCrypt`) opens every token before it validates and decides (NHS
  check digits, ages, identity matching read personal fields), and seals each recipient's
  copy again under the same child's key before it is written; a copy with nothing withheld
  or transformed is the ingress bytes as they came. A field whose key was destroyed or that
  fails authentication is decided on as absent (fail closed). With encryption off it opens
  fields only when the policy in force MASKs, GENERALISEs or PSEUDONYMISEs an encrypted tag,
  and drops ``sealed_values`` it cannot vouch for.
* Hubs open tokens when they hand an event to a sink, the inbox or the Python API
  (:class:`Revealer`); an erased field reads ``[erased]``. Reading works whatever the
  setting, so turning encryption off never shows old tokens as text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import schemas
from broker.logs import get_logger
from broker.security.field_encryption import (
    ENCRYPTED_TAGS,
    PREFIX,
    SEALED_VALUES,
    UNREADABLE,
    FieldCipher,
    _walk_tokens,
)
from broker.security.key_directory import key_provider
from broker.security.key_vault import SqliteKeyVault, vault_path
from broker.security.pseudonyms import SECRET as PSEUDONYM_SECRET
from broker.security.pseudonyms import ChildPseudonyms, plain
from broker.settings import Settings

log = get_logger("broker.fieldcrypt")


SECRETS = ("kek", "dek-index", "kid-seal", PSEUDONYM_SECRET)


def cipher_for(settings: Settings) -> FieldCipher:
    """The field cipher of this host: the embedded vault and keys under the state directory."""
    keys = key_provider(settings.keys_dir)
    for name in SECRETS:
        keys.secret(name)  # made whole on first use, whichever process comes first
    vault = SqliteKeyVault(vault_path(settings.state_dir), keys)
    return FieldCipher(vault, keys, schemas.load("SafeguardingEvent"))


def child_namer(settings: Settings) -> Callable[[str], str]:
    """How child keys appear in Kafka: pseudonyms with field encryption on, else as they are."""
    if settings.field_encryption != "on":
        return plain
    return ChildPseudonyms(key_provider(settings.keys_dir))


def publisher_cipher(settings: Settings) -> FieldCipher | None:
    """The cipher a publisher seals with, or None when field encryption is off."""
    return cipher_for(settings) if settings.field_encryption == "on" else None


def policy_needs_plaintext(policy: Any) -> bool:
    """Whether any rule transforms (rather than keeps or removes) an encrypted tag."""
    for rule in getattr(policy, "rules", ()):
        for tag, action in rule.actions.items():
            if str(tag) in ENCRYPTED_TAGS and str(action) != "REMOVE":
                return True
    return False


class FilterCrypt:
    """The filter's two calls: :meth:`open` after decoding, :meth:`seal` before encoding a copy.

    Args:
        settings: the filter's settings (``field_encryption``, the state directory).
        policy: the policy in force; call :meth:`use_policy` when it is reloaded.
    """

    def __init__(self, settings: Settings, policy: Any) -> None:
        self.enabled = settings.field_encryption == "on"
        self._settings = settings
        self._cipher: FieldCipher | None = cipher_for(settings) if self.enabled else None
        self._plaintext = False
        self.use_policy(policy)

    def use_policy(self, policy: Any) -> None:
        """Follow a (re)loaded policy."""
        self._plaintext = policy_needs_plaintext(policy)

    def _get_cipher(self) -> FieldCipher:
        if self._cipher is None:
            self._cipher = cipher_for(self._settings)
        return self._cipher

    def open(self, event: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The event to decide on, and whether its ingress bytes may be delivered as they are."""
        if not self.enabled:
            if event.get(SEALED_VALUES):  # sealed elsewhere: redaction here could not reach them
                event, reusable = {**event, SEALED_VALUES: None}, False
            else:
                reusable = True
            if not self._plaintext:
                return event, reusable
        else:
            reusable = self._get_cipher().is_sealed(event)
        if (self.enabled or self._plaintext) and self._get_cipher().has_tokens(event):
            # Erased or unreadable fields become empty, as if removed (fail closed).
            event = self._get_cipher().reveal(event, erased=None, unreadable=None)
            event = _restore_list_items(event)
        return event, reusable

    def seal(self, event: dict[str, Any], child: str) -> dict[str, Any]:
        """A copy with every tagged field sealed, when encryption is on (else the event itself).
        An empty ``child`` is a notice that names no child: it has nothing to seal."""
        if not self.enabled or not child:
            return event
        return self._get_cipher().seal(event, child)


def _restore_list_items(event: dict[str, Any]) -> dict[str, Any]:
    # An emptied list item cannot be encoded (lists hold strings); withholding the whole list
    # is the safe outcome, so drop the empty items and let redaction decide the rest.
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value if v is not None]
        return value

    return clean(event)  # type: ignore[no-any-return]


class Revealer:
    """Opens tokens for a hub. The vault is opened on the first token seen; a host without a
    vault shows every token as ``[unreadable]``.

    Args:
        settings: the hub's settings (the state directory holds the vault).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cipher: FieldCipher | None = None
        self._missing = False
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        if not _has_token(event):
            return event
        with self._lock:
            if self._cipher is None and not self._missing:
                if vault_path(self._settings.state_dir).exists():
                    self._cipher = cipher_for(self._settings)
                else:
                    self._missing = True
                    log.warning(
                        "encrypted fields received but this host has no key vault; shown as unreadable",
                        event_id=event.get("event_id"),
                    )
        if self._cipher is None:
            unopened = {**event, SEALED_VALUES: None}
            return _walk_tokens(unopened, "", lambda path, token: UNREADABLE)  # type: ignore[no-any-return]
        return self._cipher.reveal(event)


def _has_token(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(PREFIX)
    if isinstance(value, Mapping):
        return any(_has_token(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_token(v) for v in value)
    return False
