"""The local runtime secured: TLS everywhere, SCRAM or client certificates, the standard authorizer.

``sgb kafka start --security sasl_ssl`` gives clients a SASL_SSL listener (SCRAM-SHA-512);
``--security mtls`` an SSL listener that requires a client certificate. In both the
controller listener is TLS with client certificates, the brokers authenticate as
``sgb-broker`` (certificate on the controller listener; on the client listener, SCRAM or the
same certificate), and ``StandardAuthorizer`` refuses whatever no ACL allows. ``sgb-broker``
and ``sgb-admin`` are super users. Certificate subjects map to the bare common name, so the
ACLs of ``deploy/topics.yaml`` (broker/cluster/acls.py) serve SCRAM users and certificates alike.

Material lives in ``<state_dir>/kafka/tls`` (CA, broker and admin certificates) and
``<state_dir>/kafka/secrets.json`` (the SCRAM passwords of the two super users), all
owner-only; the admin's client settings are written to ``<state_dir>/credentials/sgb-admin.toml``
for ``sgb --config ... topics apply`` and ``sgb --config ... credentials ...``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from broker.cluster.acls import ADMIN_PRINCIPAL, BROKER_PRINCIPAL
from broker.cluster.tls import LocalCA, private_dir, write_private
from broker.exceptions import KafkaRuntimeError
from broker.settings import Settings

#: How long a SCRAM session lasts before it must authenticate again (a rotated password's
#: old sessions end within this).
REAUTH_MS = 60_000

SecurityMode = Literal["plaintext", "sasl_ssl", "mtls"]
MODES: tuple[str, ...] = ("plaintext", "sasl_ssl", "mtls")
SCRAM = "SCRAM-SHA-512"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
#: ``CN=sgb-filter,O=...`` -> ``sgb-filter``; anything else keeps its whole DN (and matches no ACL).
PRINCIPAL_MAPPING = "RULE:^CN=([^,]+).*$/$1/,DEFAULT"


def new_password() -> str:
    """A random SCRAM password (256 bits, URL-safe characters only)."""
    return secrets.token_urlsafe(32)


def settings_update(values: dict[str, str]) -> dict[str, Any]:
    """Client settings as written to a file, typed for ``Settings.model_copy(update=...)``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("sasl_password", "ssl_key_password"):
            out[key] = SecretStr(value)
        elif key.startswith("ssl_") and key.endswith("_location"):
            out[key] = Path(value)
        else:
            out[key] = value
    return out


def credentials_dir(settings: Settings) -> Path:
    """Where client settings files are written, one per principal (owner-only)."""
    return settings.credentials_dir


def client_settings_file(settings: Settings, principal: str) -> Path:
    return credentials_dir(settings) / f"{principal}.toml"


def _toml_value(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_client_settings(settings: Settings, principal: str, values: dict[str, str]) -> Path:
    """Write ``<state_dir>/credentials/<principal>.toml``: the SGB settings a process running as
    ``principal`` loads with ``--config`` (or ``SGB_CONFIG``). Owner-only; it holds a secret."""
    path = client_settings_file(settings, principal)
    private_dir(path.parent)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# Kafka client settings of principal {principal}, made by sgb at {when}.",
        "# Secret: do not commit, copy or mail; `sgb credentials rotate` replaces it.",
        *(f"{key} = {_toml_value(val)}" for key, val in values.items()),
    ]
    write_private(path, ("\n".join(lines) + "\n").encode())
    return path


def load_client_settings(path: Path, base: Settings) -> Settings:
    """``base`` with the connection settings of a client settings file (without touching the
    environment, unlike ``--config``)."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        msg = f"Client settings file {path} cannot be read as TOML."
        raise KafkaRuntimeError(msg) from None
    return base.model_copy(update=settings_update({str(k): str(v) for k, v in values.items()}))


class BrokerSecurity:
    """The security of one local cluster: its TLS material, super users' secrets and broker config.

    Args:
        settings: where state lives.
        home: the cluster's folder (``<state_dir>/kafka``).
        mode: ``sasl_ssl`` or ``mtls``.
    """

    def __init__(self, settings: Settings, home: Path, mode: SecurityMode) -> None:
        if mode not in ("sasl_ssl", "mtls"):
            msg = f"Security mode {mode!r} is not one of sasl_ssl, mtls."
            raise KafkaRuntimeError(msg)
        self.settings = settings
        self.mode = mode
        self.tls_dir = home / "tls"
        self.secrets_file = home / "secrets.json"
        self.ca = LocalCA(self.tls_dir)

    # -- material ------------------------------------------------------------------------------
    def _secrets(self) -> dict[str, str]:
        try:
            loaded = json.loads(self.secrets_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            msg = f"The broker's secrets file {self.secrets_file} is not valid JSON."
            raise KafkaRuntimeError(msg) from None
        return {str(k): str(v) for k, v in loaded.items()}

    def prepared(self) -> bool:
        """The CA, the broker's certificate and the super users' credentials exist."""
        needed = [self.ca.cert_path, self.tls_dir / f"{BROKER_PRINCIPAL}.bundle.pem"]
        if self.mode == "mtls":
            needed.append(self.tls_dir / f"{ADMIN_PRINCIPAL}.key")
        return all(p.is_file() for p in needed) and (self.mode == "mtls" or "admin" in self._secrets())

    def prepare(self, bootstrap: str) -> Path:
        """Make what is missing (CA, certificates, passwords) and write the admin's client
        settings file; returns that file's path."""
        private_dir(self.tls_dir)
        self.ca.ensure()
        if not (self.tls_dir / f"{BROKER_PRINCIPAL}.bundle.pem").is_file():
            self.ca.issue(BROKER_PRINCIPAL, self.tls_dir, server=True)
        if self.mode == "sasl_ssl":
            found = self._secrets()
            if "broker" not in found or "admin" not in found:
                found = {
                    "broker": found.get("broker") or new_password(),
                    "admin": found.get("admin") or new_password(),
                }
                write_private(self.secrets_file, json.dumps(found).encode())
        elif not (self.tls_dir / f"{ADMIN_PRINCIPAL}.key").is_file():
            self.ca.issue(ADMIN_PRINCIPAL, self.tls_dir)
        return write_client_settings(self.settings, ADMIN_PRINCIPAL, self.admin_values(bootstrap))

    def admin_values(self, bootstrap: str) -> dict[str, str]:
        """The admin's client settings (field names of :class:`Settings`)."""
        values = {"bootstrap_servers": bootstrap, "ssl_ca_location": str(self.ca.cert_path)}
        if self.mode == "sasl_ssl":
            values.update(
                security_protocol="SASL_SSL",
                sasl_mechanism=SCRAM,
                sasl_username=ADMIN_PRINCIPAL,
                sasl_password=self._secrets().get("admin", ""),
            )
        else:
            values.update(
                security_protocol="SSL",
                ssl_certificate_location=str(self.tls_dir / f"{ADMIN_PRINCIPAL}.pem"),
                ssl_key_location=str(self.tls_dir / f"{ADMIN_PRINCIPAL}.key"),
            )
        return values

    def admin_settings(self, settings: Settings, bootstrap: str) -> Settings:
        """``settings`` connecting as the admin (a super user)."""
        return settings.model_copy(update=settings_update(self.admin_values(bootstrap)))

    # -- the broker's configuration --------------------------------------------------------------
    def node_config(self, port: int, controller_port: int) -> dict[str, str]:
        """What replaces and adds to a node's PLAINTEXT ``server.properties``."""
        protocol = "SASL_SSL" if self.mode == "sasl_ssl" else "SSL"
        config = {
            "listeners": f"CLIENT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{port}",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map": f"CLIENT:{protocol},CONTROLLER:SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.tls_dir / f"{BROKER_PRINCIPAL}.bundle.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca.cert_path),
            "ssl.endpoint.identification.algorithm": "https",
            "ssl.principal.mapping.rules": PRINCIPAL_MAPPING,
            # The controllers accept only certificates the local CA signed (the brokers').
            "listener.name.controller.ssl.client.auth": "required",
            "authorizer.class.name": AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{BROKER_PRINCIPAL};User:{ADMIN_PRINCIPAL}",
        }
        if self.mode == "sasl_ssl":
            password = self._secrets()["broker"]
            config.update(
                {
                    "sasl.enabled.mechanisms": SCRAM,
                    "sasl.mechanism.inter.broker.protocol": SCRAM,
                    "listener.name.client.sasl.enabled.mechanisms": SCRAM,
                    # Clients authenticate again at least this often, so a rotated password cuts off
                    # sessions opened with the old one within a minute, not only new connections.
                    "connections.max.reauth.ms": str(REAUTH_MS),
                    "listener.name.client.scram-sha-512.sasl.jaas.config": (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required "
                        f'username="{BROKER_PRINCIPAL}" password="{password}";'
                    ),
                }
            )
        else:
            config["listener.name.client.ssl.client.auth"] = "required"
        return config

    def format_args(self) -> list[str]:
        """Extra ``StorageTool format`` arguments: the super users' SCRAM credentials (sasl_ssl)."""
        if self.mode != "sasl_ssl":
            return []
        found = self._secrets()
        return [
            arg
            for who in ("broker", "admin")
            for arg in (
                "--add-scram",
                f"{SCRAM}=[name={BROKER_PRINCIPAL if who == 'broker' else ADMIN_PRINCIPAL},"
                f"password={found[who]}]",
            )
        ]
