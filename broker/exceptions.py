"""Errors raised by the broker package. Each message is one sentence a user can act on."""

from __future__ import annotations


class SgbError(Exception):
    """Base of every error sgb reports to a user (the CLI prints it without a traceback)."""


class SettingsError(SgbError):
    """A setting or configuration file is invalid."""


class KafkaRuntimeError(SgbError):
    """The local Kafka runtime could not be fetched, started or stopped."""


class KafkaUnavailable(SgbError):
    """The Kafka cluster did not answer in time."""


class SerdeError(SgbError):
    """A message could not be encoded or decoded."""


class SchemaRegistryError(SgbError):
    """A schema could not be registered or looked up."""


class TopicsError(SgbError):
    """The topic declaration is invalid or could not be applied."""


class DeliveryError(SgbError):
    """Kafka did not acknowledge a message."""
