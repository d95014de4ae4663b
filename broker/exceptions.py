"""Errors raised by the broker package. Each message is one sentence a user can act on."""

from __future__ import annotations

from schemas.exceptions import SgbError, TopicsError

__all__ = [
    "BrokerError",
    "DeliveryError",
    "KafkaRuntimeError",
    "KafkaUnavailable",
    "SchemaRegistryError",
    "SerdeError",
    "SettingsError",
    "SgbError",
    "TopicsError",
]


class BrokerError(SgbError):
    """Base of the broker package's errors."""


class SettingsError(BrokerError):
    """A setting or configuration file is invalid."""


class KafkaRuntimeError(BrokerError):
    """The local Kafka runtime could not be fetched, started or stopped."""


class PortTaken(KafkaRuntimeError):
    """A port the local Kafka was to listen on is held by another process (checked before the
    start, or the node failed to bind it: another process took it between the check and the
    bind). Starting again on other ports can succeed."""


class KafkaUnavailable(BrokerError):
    """The Kafka cluster did not answer in time."""


class SerdeError(BrokerError):
    """A message could not be encoded or decoded."""


class SchemaRegistryError(BrokerError):
    """A schema could not be registered or looked up."""


class DeliveryError(BrokerError):
    """Kafka did not acknowledge a message."""


class Unsupported(BrokerError):
    """The schema has a type the compiled Avro writer does not compile (the caller falls back)."""


class NoAuthorizer(BrokerError):
    """The cluster answered that it runs no authorizer."""


class FieldUnreadable(BrokerError):
    """A sealed field's token is malformed or fails authentication (moved, altered or from another vault)."""


class KeyErased(BrokerError):
    """A sealed field's data key was destroyed: the field is erased."""
