"""``sgb schemas``: the catalogue's governance, its AsyncAPI description and its registration.

* ``check``: every schema parses, every leaf field is documented and tagged.
* ``asyncapi``: the AsyncAPI 3.0.0 document of sgb's Kafka interface.
* ``register``: register every top-level schema with the configured registry.
* ``serve``: a read-only Confluent-compatible REST face for the embedded registry.
"""

from __future__ import annotations

from pathlib import Path

import click

from broker.exceptions import SchemaRegistryError, SgbError
from broker.settings import Settings
from sgb.cli.root import Context, pass_context


@click.group("schemas")
def schemas_group() -> None:
    """The event catalogue (schemas/avro)."""


@schemas_group.command("check")
def check() -> None:
    """Every schema parses, every leaf field has known tags and a doc."""
    from schemas.exceptions import SchemaError
    from schemas.governance import check_catalogue

    try:
        summary = check_catalogue()
    except SchemaError as exc:
        raise SgbError(str(exc)) from None
    click.echo(summary)


@schemas_group.command("asyncapi")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here (JSON if the name ends .json, YAML otherwise); default: standard output.",
)
def asyncapi(output: Path | None) -> None:
    """Write the AsyncAPI 3.0.0 document of sgb's Kafka interface."""
    from schemas.exceptions import SchemaError
    from sgb.asyncapi import document

    try:
        text = document.render(document.build(), document.format_for(output))
    except (SchemaError, ValueError) as exc:
        raise SgbError(f"The AsyncAPI document could not be built: {str(exc).rstrip('.')}.") from None
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SgbError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    click.echo(f"Wrote {output}.", err=True)


@schemas_group.command("register")
@click.option(
    "--registry-url",
    default=None,
    help="A Confluent-compatible schema registry; default: SGB_SCHEMA_REGISTRY_URL, else the "
    "embedded registry in Kafka.",
)
@pass_context
def register_schemas(ctx: Context, registry_url: str | None) -> None:
    """Register every top-level schema under its subject and print subject -> id."""
    for subject, schema_id in register_all(ctx.settings, registry_url):
        click.echo(f"{subject} -> {schema_id}")


def register_all(settings: Settings, registry_url: str | None = None) -> list[tuple[str, int]]:
    """Register each record in ``schemas.governance.TOP_LEVEL``; returns (subject, id) in that order.

    Args:
        settings: the settings in use.
        registry_url: a Confluent-compatible registry that overrides the settings.
    """
    from broker.wire.codecs import NAMESPACE
    from broker.wire.registry import EmbeddedRegistry, registry_for
    from schemas import load
    from schemas.exceptions import SchemaError
    from schemas.governance import TOP_LEVEL
    from schemas.topics import SCHEMAS_TOPIC

    if registry_url is not None:
        if not registry_url.startswith(("http://", "https://")):
            msg = f"Registry URL {registry_url!r} must start with http:// or https://."
            raise SchemaRegistryError(msg)
        settings = settings.model_copy(update={"schema_registry_url": registry_url})
    try:
        registry = registry_for(settings)
    except ImportError as exc:  # the Confluent client needs confluent-kafka's schemaregistry extra
        msg = (
            f"The Confluent schema registry client cannot be loaded ({exc}); install confluent-kafka with "
            "its schemaregistry extra."
        )
        raise SchemaRegistryError(msg) from None
    if isinstance(registry, EmbeddedRegistry):
        _require_topic(settings, settings.topic(SCHEMAS_TOPIC))
    out = []
    for name in TOP_LEVEL:
        try:
            schema = load(name)
        except SchemaError as exc:
            raise SchemaRegistryError(str(exc)) from None
        subject = f"{NAMESPACE}.{name}"
        out.append((subject, registry.register(subject, schema)))
    return out


@schemas_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8085, show_default=True, help="The port.")
@pass_context
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the embedded registry read-only over Confluent's REST API, so Kafka UI, kcat and
    confluent-kafka's AvroDeserializer decode sgb's topics with no other server.

    \b
    kcat -C -t sg.deliver.mash.202.v1 -s value=avro -r http://127.0.0.1:8085
    Subjects are record names (RecordNameStrategy), not <topic>-value; readers need only the id.
    """
    from broker.wire.registry import EmbeddedRegistry
    from broker.wire.registry_rest import serve_registry
    from schemas.topics import SCHEMAS_TOPIC

    settings = ctx.settings
    if settings.schema_registry_url:
        msg = (
            f"SGB_SCHEMA_REGISTRY_URL names a registry ({settings.schema_registry_url}); "
            "point tools at it: `sgb schemas serve` serves only the embedded one."
        )
        raise SgbError(msg)
    _require_topic(settings, settings.topic(SCHEMAS_TOPIC))
    click.echo(f"Serving the embedded schema registry (read-only) on http://{host}:{port}.", err=True)
    serve_registry(EmbeddedRegistry(settings, read_only=True), host, port)


def _require_topic(settings: Settings, topic: str, timeout: float = 10.0) -> None:
    """Fail with one sentence when Kafka does not answer or the registrations topic is missing."""
    from confluent_kafka import KafkaException

    from broker.clients import admin_client

    try:
        metadata = admin_client(settings).list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        msg = f"Kafka at {settings.bootstrap} did not answer: {exc.args[0].str()}."
        raise SchemaRegistryError(msg) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        msg = f"The schema registrations topic {topic} does not exist; run `sgb topics apply`."
        raise SchemaRegistryError(msg)


def register(cli: click.Group) -> None:
    cli.add_command(schemas_group)
