"""``sgb erase --child KEY``: destroy one child's data key, so its encrypted fields in Kafka are
erased, and send an ``ERASED`` correction for every event of the child that was shared, so that
each recipient's sink drops what it holds of it (POLICY.md principle 10; ``sgb/ops/erasure.py``).

With ``SGB_FIELD_ENCRYPTION=on`` every personal field of the child, on ingress and delivery
topics alike, is sealed with that key (``broker/security/field_encryption.py``) and every
message key names the child by a pseudonym (``broker/security/pseudonyms.py``). Destroying
the key makes every copy still on the immutable log unreadable; readers show those fields as
``[erased]``. The child's records on the compacted topics get tombstones. With encryption
off nothing was sealed, and the command says so. The output and the log name the child only
by a keyed hash, never by its key.
"""

from __future__ import annotations

import re

import click

from broker.exceptions import SgbError
from broker.logs import get_logger
from broker.security.ciphers import child_namer
from broker.security.key_directory import key_provider
from broker.security.key_vault import SqliteKeyVault, vault_path
from consent.filter.identity import erase_demographics
from sgb.cli.root import Context, pass_context

log = get_logger("broker.erase")

CHILD_KEY = re.compile(r"^(nhs:[0-9]{10}|la:[^:\s]+:\S+|police:\S+|upn:\S+|lpi:[A-Z0-9]{3,6}:\S+)$")


@click.command("erase")
@click.option(
    "--child",
    "child",
    required=True,
    metavar="KEY",
    help="The child's key as on the ingress topics: nhs:<number>, la:<la>:<id>, police:<ref>, upn:<upn> "
    "or lpi:<ods>:<id>. Its demographics kept for matching are sealed with the same key, so they go too.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--keys-only",
    is_flag=True,
    help="Only destroy the data key; send no ERASED corrections to the recipients (needs no Kafka).",
)
@pass_context
def erase(ctx: Context, child: str, yes: bool, keys_only: bool) -> None:
    """Destroy a child's data key and tell every recipient of the child's events to erase them."""
    if not CHILD_KEY.match(child):
        msg = "The --child key must look like nhs:<10 digits>, la:<la>:<id>, police:<ref>, upn:<upn> or lpi:<ods>:<id>."
        raise SgbError(msg)
    settings = ctx.settings
    # The demographics kept for matching (principle 11) go with the child, vault or not.
    forgotten = erase_demographics(settings.state_dir, sorted({child, child_namer(settings)(child)}))
    unsealed = (
        " Field encryption is off here (SGB_FIELD_ENCRYPTION), so whatever of the child was published "
        "unsealed stays readable on the Kafka topics until its retention ends."
        if settings.field_encryption != "on"
        else ""
    )
    path = vault_path(settings.state_dir)
    if not path.exists() and keys_only:
        if forgotten:
            click.echo(
                f"{forgotten} demographic record(s) kept for matching deleted; no key vault here.{unsealed}"
            )
            return
        msg = f"No key vault at {path}: nothing was ever encrypted here (is SGB_STATE_DIR right?)."
        raise SgbError(msg)
    destroyed, ref = 0, ""
    if path.exists():
        vault = SqliteKeyVault(path, key_provider(settings.keys_dir))
        try:
            ref = vault.child_ref(child)
            if not yes:
                click.confirm(f"Erase child ref {ref[:12]}? This cannot be undone", abort=True)
            destroyed = vault.destroy(child)
        finally:
            vault.close()
    elif not yes:
        click.confirm(
            "Erase this child's shared events at every recipient? This cannot be undone", abort=True
        )
    if not keys_only:
        from sgb.ops.erasure import forget_compacted, send_erasures  # Kafka clients load only when needed

        sent = send_erasures(settings, child)
        tombstones = forget_compacted(settings, child)
        log.warning(
            "erasure corrections sent",
            action="erase",
            child_ref=ref or None,
            count=sent,
            tombstones=tombstones,
        )
        if destroyed or sent or forgotten or tombstones:
            click.echo(
                f"{destroyed} data key destroyed; {sent} ERASED correction(s) sent to the recipients of "
                f"the child's shared events; {tombstones} tombstone(s) written for its records on compacted "
                f"topics; {forgotten} demographic record(s) kept for matching deleted.{unsealed}"
            )
            return
        msg = "Nothing to erase: no data key, no shared event and no demographics of that child."
        raise SgbError(msg)
    if not destroyed and not forgotten:
        msg = (
            f"No data key for child ref {ref[:12]}: nothing of that child was encrypted, "
            "or it was already erased."
        )
        raise SgbError(msg)
    log.warning(
        "child data key destroyed; the child's encrypted fields are erased",
        action="erase",
        child_ref=ref,
        count=destroyed,
        demographics=forgotten,
    )
    click.echo(
        f"{destroyed} data key destroyed (child ref {ref[:12]}); its encrypted fields still in Kafka "
        f"are now unreadable. {forgotten} demographic record(s) kept for matching deleted.{unsealed}"
    )


def register(cli: click.Group) -> None:
    """Add ``sgb erase`` to the command line."""
    cli.add_command(erase)
