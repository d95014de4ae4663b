"""``sgb deploy k8s``: Kubernetes manifests (Strimzi) generated from the topic declaration."""

from __future__ import annotations

from pathlib import Path

import click

from broker.exceptions import SgbError
from schemas.topics import DECLARATION, load_declaration


@click.group("deploy")
def deploy() -> None:
    """Deployment files generated from deploy/topics.yaml."""


@deploy.command("k8s")
@click.option(
    "--output",
    "output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the manifests into (deploy/k8s in this repository).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=DECLARATION,
    show_default=True,
    help="The topic declaration the manifests follow.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file in --output is out of date.")
def k8s(output: Path, path: Path, check: bool) -> None:
    """Write the Strimzi Kafka, KafkaNodePool, KafkaTopic and KafkaUser resources (with ACLs),
    the filter, connector and hub workloads and their NetworkPolicies."""
    from sgb.manifests.generate import stale_files, write_k8s

    declaration = load_declaration(path)
    if check:
        stale = stale_files(output, declaration)
        if stale:
            msg = (
                f"{len(stale)} manifest file(s) in {output} are out of date ({', '.join(stale)}); "
                f"run `sgb deploy k8s --output {output}`."
            )
            raise SgbError(msg)
        click.echo(f"The manifests in {output} are up to date.")
        return
    try:
        written = write_k8s(output, declaration)
    except (OSError, ValueError) as exc:
        msg = f"The manifests could not be written to {output}: {exc}."
        raise SgbError(msg) from None
    click.echo(f"Wrote {len(written)} manifest files to {output}.")


def register(cli: click.Group) -> None:
    cli.add_command(deploy)
