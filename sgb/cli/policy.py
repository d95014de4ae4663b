"""``sgb policy check`` and ``sgb policy evaluate``: governance of what is shared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sgb.cli.root import Context, pass_context

if TYPE_CHECKING:
    from consent.explain import Explainer
    from consent.state import ChildState


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
    default=None,
    help="The event as JSON (field names as in the .avsc files).",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help='Many events, one JSON a line (- for standard input); a line may be {"event": ..., "state": ...}. '
    "Prints one JSON answer a line.",
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
def evaluate(
    ctx: Context,
    event_path: Path | None,
    events_path: Path | None,
    state_path: Path | None,
    policy_path: Path | None,
) -> None:
    """Print, as JSON, one decision per candidate audience and each delivered copy.

    With --events, every event of the file is evaluated in one run, so the start-up is paid
    once: one answer a line, in the file's order, each with its line number; an event the
    filter would refuse is a line with "rejected" and the reason, and the command exits 1
    after the last line.
    """
    from broker.security.key_directory import key_provider
    from consent.explain import Explainer, read_json, state_from_json
    from consent.policy import BASELINE, load
    from consent.state import ChildState
    from schemas.topics import load_declaration

    if (event_path is None) == (events_path is None):
        raise click.UsageError("Give exactly one of --event FILE or --events FILE.")
    loaded = load(policy_path or BASELINE)
    state = state_from_json(read_json(state_path, "State")) if state_path else ChildState()
    settings = ctx.quiet_settings  # evaluate prints JSON and logs nothing
    key = key_provider(settings.keys_dir).secret("pseudonymisation")
    explainer = Explainer(loaded, load_declaration(settings.declaration_file()), key)
    if event_path is not None:
        click.echo(json.dumps(explainer.explain(read_json(event_path, "Event"), state), indent=2))
        return
    assert events_path is not None
    rejected, total = _evaluate_lines(explainer, events_path, state)
    if rejected:
        click.echo(f"sgb: {rejected} of {total} events were rejected (their lines say why).", err=True)
        raise SystemExit(1)


def _evaluate_lines(explainer: Explainer, path: Path, state: ChildState) -> tuple[int, int]:
    """Print one answer a line of ``path`` (``-``: standard input); returns (rejected, evaluated)."""
    from consent.explain import scenarios
    from schemas.exceptions import SgbError

    rejected = total = 0
    try:
        handle = click.open_file(str(path), encoding="utf-8")
    except OSError as exc:
        msg = f"Events file {path} cannot be read: {exc.strerror or type(exc).__name__}."
        raise click.ClickException(msg) from None
    with handle:
        for scenario in scenarios(handle, state):
            total += 1
            answer: dict[str, Any] = {"line": scenario.line}
            if isinstance(scenario.event_json, dict) and isinstance(scenario.event_json.get("event_id"), str):
                answer["event_id"] = scenario.event_json["event_id"]
            problem = scenario.problem
            if problem is None:
                try:
                    answer.update(explainer.explain(scenario.event_json, scenario.state))
                except SgbError as exc:
                    problem = str(exc)
            if problem is not None:
                rejected += 1
                answer["rejected"] = problem
            click.echo(json.dumps(answer, separators=(",", ":")))
    return rejected, total


def register(cli: click.Group) -> None:
    cli.add_command(policy)
