"""Settings: one pydantic model, from ``SGB_`` environment variables and a TOML file.

Precedence, highest first: explicit overrides (command-line options), environment
variables, the config file named by ``SGB_CONFIG`` (or ``--config``), defaults.

The sources are merged here rather than by ``pydantic-settings``: three sources need a dozen
lines, and that package's import (its cloud secret providers among them) was the largest
part of a short command's start-up (``sgb policy evaluate``, issue 16).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from broker.exceptions import SettingsError
from schemas.topics import DECLARATION

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sgb"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sgb"


def _from_sources(explicit: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """The values for ``Settings``: the TOML file's, then the environment's, then ``explicit``."""
    values: dict[str, Any] = {}
    config_file = os.environ.get("SGB_CONFIG")
    if config_file:
        with Path(config_file).open("rb") as handle:
            values.update(tomllib.load(handle))
    environment = {name.upper(): value for name, value in os.environ.items()}
    for name in fields:
        if f"SGB_{name.upper()}" in environment:
            values[name] = environment[f"SGB_{name.upper()}"]
    values.update(explicit)
    return values


class Settings(BaseModel):
    """Everything sgb needs to reach Kafka and keep its local state.

    Environment variables are the field names in upper case with the ``SGB_`` prefix,
    for example ``SGB_BOOTSTRAP_SERVERS``. Making a ``Settings`` reads them (and the TOML
    file named by ``SGB_CONFIG``) under the values given.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**_from_sources(values, set(type(self).model_fields)))

    bootstrap_servers: str | None = Field(
        default=None,
        description="Kafka bootstrap servers, host:port[,host:port]. Default: the local broker.",
    )
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None

    schema_registry_url: str | None = Field(
        default=None,
        description="URL of a Confluent-compatible schema registry; unset means the embedded registry in Kafka.",
    )
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None

    state_dir: Path = Field(default_factory=_default_state_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    kafka_port: int = Field(default=9092, ge=1024, le=65535)
    kafka_controller_port: int | None = Field(default=None, ge=1024, le=65535)
    kafka_security: Literal["plaintext", "sasl_ssl", "mtls"] | None = Field(
        default=None,
        description="How `sgb kafka start` secures the local broker: plaintext, sasl_ssl (SCRAM-SHA-512) or "
        "mtls. Default: what this state directory last ran, else plaintext.",
    )
    kafka_heap: str = Field(default="512m", pattern=r"^[0-9]+[mMgG]$")
    kafka_jit: Literal["quick", "full"] = Field(
        default="quick",
        description="How the local broker's JVM compiles: quick (the C1 compiler alone: at speed within "
        "seconds, little CPU spent compiling; for tests, the demo and small machines) or full (tiered, with "
        "C2: spends a core for minutes, then faster; for a broker that runs for days).",
    )
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    field_encryption: Literal["on", "off"] = Field(
        default="off",
        description="Seal CONFIDENTIAL_ADDRESS and NARRATIVE fields with a per-child key (broker/security/field_encryption).",
    )
    topics_file: Path | None = Field(
        default=None,
        description="The topic declaration; unset means the one shipped in the package (deploy/topics.yaml "
        "in the source tree). A command's --file option overrides it.",
    )
    provenance: bool = Field(
        default=False,
        description="on: connectors and the filter sign what they produce; the filter and hubs verify "
        "(broker/security/provenance.py). Off by default.",
    )

    tracing: str = Field(
        default="off",
        pattern=r"^(off|otlp|file:.+)$",
        description="OpenTelemetry traces (broker/tracing.py): off, otlp (the OTEL_EXPORTER_OTLP_* "
        "variables say where; needs sgb[otlp]) or file:PATH (JSON lines). Off by default.",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                msg = "must be a comma-separated list of host:port"
                raise ValueError(msg)
        return value

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers to use: the setting, or the local broker's port."""
        return self.bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    # -- where state lives: one place for every path under the state directory ----------------
    @property
    def keys_dir(self) -> Path:
        """The local key directory (signing, pseudonymisation and field-encryption keys)."""
        return self.state_dir / "keys"

    @property
    def kafka_dir(self) -> Path:
        """The local Kafka runtime's folder (config, data, logs, TLS)."""
        return self.state_dir / "kafka"

    @property
    def tls_dir(self) -> Path:
        """The local cluster's certificate authority and certificates."""
        return self.kafka_dir / "tls"

    @property
    def credentials_dir(self) -> Path:
        """Principals' client configurations made by ``sgb credentials``."""
        return self.state_dir / "credentials"

    def connector_dir(self, name: str) -> Path:
        """A connector's checkpoints and snapshot store (``name`` already validated)."""
        return self.state_dir / "connectors" / name

    def filter_store(self, group_id: str, instance: str) -> Path:
        """A filter process's per-child state store."""
        return self.state_dir / "filter" / f"{group_id}.{instance}.db"

    def hub_store(self, audience: str, organisation: str) -> Path:
        """A hub inbox's store of received events."""
        return self.state_dir / "hub" / f"{audience.lower()}.{organisation}.db"

    def as_environment(self) -> dict[str, str]:
        """The ``SGB_*`` environment variables that give a child process exactly these settings.

        A process that starts another ``sgb`` process (the demo, tests) passes every setting,
        secrets and security switches included, so the child cannot silently run with less.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"SGB_{name.upper()}"] = str(value)
        env["SGB_BOOTSTRAP_SERVERS"] = self.bootstrap
        return env

    def declaration_file(self, option: Path | None = None) -> Path:
        """The topic declaration to read: a command's option, else ``SGB_TOPICS_FILE``, else the
        one shipped in the package."""
        return option or self.topics_file or DECLARATION

    def topic(self, name: str) -> str:
        """The physical name of a logical topic (the prefix isolates test runs and environments)."""
        return f"{self.topic_prefix}{name}"

    def kafka_config(self) -> dict[str, Any]:
        """The librdkafka configuration for connecting, security included."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = str(self.ssl_ca_location)
        if self.ssl_certificate_location:
            config["ssl.certificate.location"] = str(self.ssl_certificate_location)
        if self.ssl_key_location:
            config["ssl.key.location"] = str(self.ssl_key_location)
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return config


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning a validation error into one sentence naming the setting.

    Args:
        config_file: a TOML file of settings; overrides ``SGB_CONFIG``.
        overrides: values from the command line; ``None`` values are ignored.
    """
    if config_file is not None:
        if not config_file.is_file():
            msg = f"Config file {config_file} does not exist."
            raise SettingsError(msg)
        os.environ["SGB_CONFIG"] = str(config_file)
    elif os.environ.get("SGB_CONFIG") and not Path(os.environ["SGB_CONFIG"]).is_file():
        msg = f"Config file {os.environ['SGB_CONFIG']} named by SGB_CONFIG does not exist."
        raise SettingsError(msg)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        if first["type"] == "extra_forbidden":
            msg = f"Unknown setting {name!r} in the config file."
        else:
            msg = f"Setting SGB_{name.upper()} is invalid: {first['msg']}."
        raise SettingsError(msg) from None
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        msg = f"Config file could not be read: {exc}."
        raise SettingsError(msg) from None
