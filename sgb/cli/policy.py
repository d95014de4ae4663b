"""``sgb policy check`` and ``sgb policy evaluate``: governance of what is shared."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sgb.cli.root import Context, pass_context


@click.group("policy")
def policy() -> None:
    """Check a policy, or show exactly what it would share and why."""


@policy.command("check")
@click.argument("path", type=click.Path(path_type=Path), required=False)
def check(path: Path | None) -> None:
    """Validate a policy file (default: the shipped baseline); names the rule that is wrong."""
    from consent.policy import BASELINE, load

    loaded = load(path or BASELINE)
    click.echo(
        f"Policy {loaded.name} {loaded.version_id}: {len(loaded.rules)} rules, "
        f"{len(loaded.prohibitions)} prohibitions, hard limits respected."
    )


@policy.command("evaluate")
@click.option(
    "--event",
    "event_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The event as JSON (field names as in the .avsc files).",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path),
    default=None,
    help='The child\'s state as JSON: {"consents": [...], "status": {...}}.',
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Policy file (default: the shipped baseline).",
)
@pass_context
def evaluate(ctx: Context, event_path: Path, state_path: Path | None, policy_path: Path | None) -> None:
    """Print, as JSON, one decision per candidate audience and each delivered copy."""
    from broker.security.key_directory import key_provider
    from consent.explain import explain, read_json, state_from_json
    from consent.policy import BASELINE, load
    from consent.state import ChildState
    from schemas.topics import load_declaration

    loaded = load(policy_path or BASELINE)
    event = read_json(event_path, "Event")
    state = state_from_json(read_json(state_path, "State")) if state_path else ChildState()
    settings = ctx.quiet_settings  # evaluate prints JSON and logs nothing
    key = key_provider(settings.keys_dir).secret("pseudonymisation")
    result = explain(loaded, event, state, load_declaration(settings.declaration_file()), key)
    click.echo(json.dumps(result, indent=2))


def register(cli: click.Group) -> None:
    cli.add_command(policy)
