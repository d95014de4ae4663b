"""``sgb keys``: provenance signing keys and the trust store (see broker/security/provenance.py).

Rotation without downtime: ``sgb keys rotate <signer>`` makes a new key, trusts it and
makes it the signer's active key; running processes switch to it and keep accepting the
old one until ``sgb keys retire <old-key-id>``. Across machines, trust the new key on every
verifier first: ``sgb keys rotate <signer> --no-activate``, ``sgb keys export <key-id>``,
``sgb keys trust FILE`` on each verifier, then ``sgb keys activate <key-id>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from broker.security.signing_keys import KeyStore, KeyStoreError
from sgb.cli.root import Context, pass_context


def _store(ctx: Context) -> KeyStore:
    return KeyStore(ctx.settings.keys_dir)


@click.group("keys")
def keys() -> None:
    """Provenance keys: who may sign what, rotation and retirement."""


@keys.command("list")
@pass_context
def list_keys(ctx: Context) -> None:
    """Every trusted key: its id, signer, creation time and status (active, valid or retired)."""
    store = _store(ctx)
    entries = store.trusted()
    if not entries:
        click.echo("No keys yet: a signer's first key is made when it first signs (SGB_PROVENANCE=on).")
        return
    click.echo(f"{'KEY ID':<44} {'SIGNER':<24} {'CREATED':<26} STATUS")
    for entry in sorted(entries.values(), key=lambda e: (e.signer, e.created_at, e.key_id)):
        if entry.retired:
            status = f"retired {entry.retired_at}"
        elif store.active_key_id(entry.signer) == entry.key_id:
            status = "active"
        else:
            status = "valid"
        click.echo(f"{entry.key_id:<44} {entry.signer:<24} {entry.created_at:<26} {status}")


@keys.command("rotate")
@click.argument("signer")
@click.option(
    "--activate/--no-activate",
    default=True,
    show_default=True,
    help="Sign with the new key at once, or only trust it (then `sgb keys activate`).",
)
@pass_context
def rotate(ctx: Context, signer: str, activate: bool) -> None:
    """Make a new key for SIGNER (filter, health, police, education, local_authority[.ORG])."""
    store = _store(ctx)
    old = store.active_key_id(signer)
    entry = store.rotate(signer, activate=activate)
    state = "and active." if activate else "; trusted, not active."
    click.echo(f"{entry.key_id} made for {signer} {state}".replace(" ;", ";"))
    if old and activate:
        click.echo(f"{old} is still accepted; run `sgb keys retire {old}` once nothing signs with it.")


@keys.command("activate")
@click.argument("key_id")
@pass_context
def activate(ctx: Context, key_id: str) -> None:
    """Make KEY_ID its signer's signing key (it must be trusted and its private key on this machine)."""
    entry = _store(ctx).activate(key_id)
    click.echo(f"{entry.signer} now signs with {entry.key_id}.")


@keys.command("retire")
@click.argument("key_id")
@pass_context
def retire(ctx: Context, key_id: str) -> None:
    """Stop accepting KEY_ID: what it signed from now on is rejected (running verifiers notice at once)."""
    entry = _store(ctx).retire(key_id)
    click.echo(f"{entry.key_id} ({entry.signer}) retired at {entry.retired_at}.")


@keys.command("export")
@click.argument("name")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (default: standard output).",
)
@pass_context
def export(ctx: Context, name: str, output: Path | None) -> None:
    """The public trust entry of NAME (a key id, or a signer's active key), for `sgb keys trust` elsewhere."""
    text = json.dumps(_store(ctx).export(name).to_json(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        click.echo(f"Trust entry written to {output}.")


@keys.command("trust")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@pass_context
def trust(ctx: Context, path: Path) -> None:
    """Add the public key in PATH (made by `sgb keys export`) to this machine's trust store."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        msg = f"Trust entry file {path} does not exist."
        raise KeyStoreError(msg) from None
    except ValueError:
        msg = f"Trust entry file {path} is not JSON."
        raise KeyStoreError(msg) from None
    entry = _store(ctx).trust(data, str(path))
    click.echo(f"{entry.key_id} ({entry.signer}) trusted" + (" as retired." if entry.retired else "."))


def register(cli: click.Group) -> None:
    """Add ``sgb keys`` to the command line."""
    cli.add_command(keys)
