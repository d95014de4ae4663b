"""``sgb topics apply``: make the cluster's topics, and its ACLs when it runs an authorizer, match
the declaration."""

from __future__ import annotations

from pathlib import Path

import click

from broker.cluster.acl_apply import AclReport, apply_acls
from broker.cluster.topics import apply
from schemas.topics import load_declaration
from sgb.cli.root import Context, pass_context


@click.group("topics")
def topics() -> None:
    """Topics and ACLs as code (deploy/topics.yaml)."""


@topics.command("apply")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="The topic declaration (default: SGB_TOPICS_FILE, else the one shipped with sgb).",
)
@click.option("--dry-run", is_flag=True, help="Report what would change without changing it.")
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing; exit 1 if the topics or ACLs differ from the declaration (drift).",
)
@click.option("--prune", is_flag=True, help="Also delete ACLs the declaration does not have.")
@pass_context
def apply_cmd(ctx: Context, path: Path | None, dry_run: bool, check: bool, prune: bool) -> None:
    """Create missing topics and change what differs; with an authorizer, create the declared ACLs
    and report those present but not declared. Running it twice changes nothing."""
    dry_run = dry_run or check
    declaration = load_declaration(ctx.settings.declaration_file(path))
    report = apply(ctx.settings, declaration, dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    for name in report.created:
        click.echo(f"{verb} {name}")
    for line in report.altered:
        click.echo(f"{'would change' if dry_run else 'changed'} {line}")
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"{len(report.created)} created, {len(report.altered)} changed, {len(report.unchanged)} unchanged."
    )
    acls = apply_acls(ctx.settings, declaration, dry_run=dry_run, prune=prune)
    _echo_acls(acls, dry_run)
    if check and (report.changed or acls.drift):
        click.echo("drift: the cluster differs from the declaration.", err=True)
        raise SystemExit(1)


def _echo_acls(acls: AclReport, dry_run: bool) -> None:
    if not acls.enabled:
        return  # no authorizer (a PLAINTEXT development broker): nothing to apply, output as before
    for binding in acls.created:
        click.echo(f"{'would add' if dry_run else 'added'} ACL {binding.describe()}")
    for binding in acls.removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} ACL {binding.describe()}")
    for binding in acls.undeclared:
        click.echo(f"undeclared ACL {binding.describe()} (kept; --prune removes it)")
    click.echo(
        f"ACLs: {len(acls.created)} added, {len(acls.removed)} removed, "
        f"{len(acls.undeclared)} undeclared, {acls.unchanged} unchanged."
    )


def register(cli: click.Group) -> None:
    cli.add_command(topics)
