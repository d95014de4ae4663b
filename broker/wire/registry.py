"""Schema lookup behind one interface, with two implementations.

* :class:`ConfluentRegistry`: any Confluent-compatible schema registry, by URL.
* :class:`EmbeddedRegistry`: no extra server. Schemas come from ``schemas/``; their
  registrations are records on the compacted topic ``sg.schemas.v1``. A schema's id is
  derived from its content, so every process agrees on it without coordination, and a
  reader that meets an unknown id reads the topic to find it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from broker.clients import admin_client, flush_or_raise, producer
from broker.exceptions import SchemaRegistryError
from broker.logs import get_logger
from broker.settings import Settings
from schemas.topics import SCHEMAS_TOPIC

log = get_logger("broker.registry")

_SETTLING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TRANSPORT)


class SchemaRegistry(Protocol):
    """Where writers register schemas and readers find them by id."""

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Register ``schema`` under ``subject`` (idempotent) and return its id."""
        ...

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema with this id; raises :class:`SchemaRegistryError` if there is none."""
        ...


def canonical_json(schema: dict[str, Any]) -> str:
    """The schema as compact JSON with sorted keys: what ids are derived from."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def content_id(schema: dict[str, Any]) -> int:
    """A positive 31-bit id derived from the schema's content."""
    digest = hashlib.sha256(canonical_json(schema).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


class EmbeddedRegistry:
    """Registrations kept in Kafka itself; see the module docstring.

    Anyone who may write ``sg.schemas.v1`` can put anything there, so a registration is
    believed only when its id is the id its schema's content derives: a record that does not
    parse, or that claims an id its schema does not have, is skipped with a log line and
    counted in :attr:`skipped`, never fatal and never trusted.

    Args:
        settings: how to reach Kafka (and the topic prefix).
        read_only: never write registrations (hubs and operator commands): a schema this
            process encodes with is known from the shipped catalogue; one it meets by id is
            looked up on the topic.
    """

    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self._settings = settings
        self._topic = settings.topic(SCHEMAS_TOPIC)
        self._by_id: dict[int, dict[str, Any]] = {}
        self._registered: set[tuple[str, int]] = set()
        self._subjects: dict[str, list[int]] = {}  # subject -> its ids, in the order registered
        self._lock = threading.Lock()
        self._producer: Any = None
        self.read_only = read_only
        self.skipped = 0

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        schema_id = content_id(schema)
        key = (subject, schema_id)
        with self._lock:
            if key in self._registered:
                return schema_id
            if self.read_only:
                self._by_id[schema_id] = schema
                self._registered.add(key)
                self._remember(subject, schema_id)
                return schema_id
            known = self._by_id.get(schema_id)
            if known is not None and canonical_json(known) != canonical_json(schema):
                msg = f"Schema id {schema_id} for subject {subject} collides with a different schema."
                raise SchemaRegistryError(msg)
            if self._producer is None:
                self._producer = producer(self._settings)
            prod = self._producer
            value = json.dumps({"subject": subject, "id": schema_id, "schema": schema}).encode()
            prod.produce(self._topic, key=f"{subject}:{schema_id}".encode(), value=value)
            flush_or_raise(prod, 30.0, f"registering schema {subject}")
            self._by_id[schema_id] = schema
            self._registered.add(key)
            self._remember(subject, schema_id)
        return schema_id

    def _remember(self, subject: str, schema_id: int) -> None:
        ids = self._subjects.setdefault(subject, [])
        if schema_id not in ids:
            ids.append(schema_id)

    def subjects(self, refresh: bool = True) -> dict[str, list[int]]:
        """Every subject on the registrations topic with its schema ids, oldest first (its
        versions 1, 2, ...); ``refresh`` reads the topic to its end first."""
        if refresh:
            self._catch_up()
        with self._lock:
            return {subject: list(ids) for subject, ids in sorted(self._subjects.items())}

    def schema(self, schema_id: int) -> dict[str, Any]:
        found = self._by_id.get(schema_id)
        if found is None:
            self._catch_up()
            found = self._by_id.get(schema_id)
        if found is None:
            msg = f"Schema id {schema_id} is not registered in {self._topic}."
            raise SchemaRegistryError(msg)
        return found

    def _catch_up(self, timeout: float = 10.0) -> None:
        """Read the registrations topic from the start to its end; Kafka errors become ours."""
        for attempt in range(10):
            try:
                self._read_all(timeout)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if attempt == 9 or not (error.retriable() or error.code() in _SETTLING):
                    msg = f"The schema registrations topic {self._topic} could not be read: {error.str()}."
                    raise SchemaRegistryError(msg) from None
                time.sleep(0.3)

    def _read_all(self, timeout: float) -> None:
        meta = admin_client(self._settings).list_topics(self._topic, timeout=timeout)
        topic = meta.topics.get(self._topic)
        if topic is None or topic.error is not None:
            msg = f"The schema registrations topic {self._topic} does not exist; run `sgb topics apply`."
            raise SchemaRegistryError(msg)
        cons = Consumer(
            {
                **self._settings.kafka_config(),
                "group.id": "sgb-schema-reader",
                "enable.auto.commit": False,
                "logger": _quiet(),
            }
        )
        try:
            ends: dict[int, int] = {}
            assignment = []
            for partition in topic.partitions:
                low, high = cons.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=timeout
                )
                if high > low:
                    ends[partition] = high
                    assignment.append(TopicPartition(self._topic, partition, low))
            cons.assign(assignment)
            while ends:
                message = cons.poll(timeout)
                if message is None:
                    break
                if message.error():
                    continue
                registration = _registration(message.value())
                partition = int(message.partition() or 0)
                if registration is None:
                    self.skipped += 1
                    log.warning(
                        "schema registration unreadable or not its content's id; skipped",
                        topic=self._topic,
                        partition=partition,
                        offset=message.offset(),
                    )
                else:
                    schema_id, schema, subject = registration
                    with self._lock:
                        self._by_id.setdefault(schema_id, schema)
                        if subject:
                            self._remember(subject, schema_id)
                if int(message.offset() or 0) + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
        finally:
            cons.close()


def _registration(value: bytes | None) -> tuple[int, dict[str, Any], str] | None:
    """(id, schema, subject) of a registration record, or None when it is not one this registry trusts."""
    try:
        record = json.loads(value or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    schema, claimed = record.get("schema"), record.get("id")
    if not isinstance(schema, dict) or not isinstance(claimed, int) or isinstance(claimed, bool):
        return None
    try:
        derived = content_id(schema)
    except (TypeError, ValueError, RecursionError):
        return None
    subject = record.get("subject")
    return (claimed, schema, subject if isinstance(subject, str) else "") if derived == claimed else None


class ConfluentRegistry:
    """A Confluent-compatible schema registry reached by URL.

    Args:
        url: the registry's base URL.
        username: basic-auth user, if the registry needs one.
        password: basic-auth password.
    """

    def __init__(
        self, url: str, username: str | None = None, password: str | None = None, *, read_only: bool = False
    ) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.read_only = read_only
        conf: dict[str, Any] = {"url": url}
        if username is not None:
            conf["basic.auth.user.info"] = f"{username}:{password or ''}"
        self._client = SchemaRegistryClient(conf)
        self._by_id: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError as _RegistryError

        try:
            if self.read_only:  # look the schema up; never register
                found = self._client.lookup_schema(subject, Schema(json.dumps(schema), "AVRO"))
                schema_id = int(found.schema_id or 0)
            else:
                schema_id = int(self._client.register_schema(subject, Schema(json.dumps(schema), "AVRO")))
        except _RegistryError as exc:
            msg = f"The schema registry refused {subject}: {exc.error_message}."
            raise SchemaRegistryError(msg) from None
        except Exception as exc:
            msg = f"The schema registry could not be reached to register {subject}: {type(exc).__name__}."
            raise SchemaRegistryError(msg) from None
        self._by_id[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        found = self._by_id.get(schema_id)
        if found is None:
            try:
                found = json.loads(self._client.get_schema(schema_id).schema_str or "null")
            except Exception as exc:
                msg = f"Schema id {schema_id} could not be fetched from the schema registry: {type(exc).__name__}."
                raise SchemaRegistryError(msg) from None
            self._by_id[schema_id] = found
        return found


class InMemoryRegistry:
    """Registrations held in this process only: for benchmarks and offline tools that
    encode and decode within one process. Ids are content-derived, as in Kafka."""

    def __init__(self) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        schema_id = content_id(schema)
        self._by_id[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        try:
            return self._by_id[schema_id]
        except KeyError:
            msg = f"Schema id {schema_id} is not registered in this process."
            raise SchemaRegistryError(msg) from None


def _quiet() -> Any:
    import logging

    return logging.getLogger("librdkafka")


def registry_for(settings: Settings, *, read_only: bool = False) -> SchemaRegistry:
    """The registry the settings name: a URL means Confluent-compatible, none means embedded.

    ``read_only`` for processes that only read (hubs, operator commands): they look schemas
    up and never register, so their principals need only Read on the registrations.
    """
    if settings.schema_registry_url:
        password = settings.schema_registry_password
        return ConfluentRegistry(
            settings.schema_registry_url,
            settings.schema_registry_username,
            password.get_secret_value() if password else None,
            read_only=read_only,
        )
    return EmbeddedRegistry(settings, read_only=read_only)
