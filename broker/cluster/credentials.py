"""Credentials by command: ``sgb credentials create|rotate|list``, never by hand.

Run as the admin (``sgb --config <state_dir>/credentials/sgb-admin.toml credentials ...``).
On a SASL_SSL cluster a principal gets a SCRAM-SHA-512 password set through the admin API
(``alter_user_scram_credentials``); rotating sets a new one, and the old one is refused from
then on. On an SSL (mutual TLS) cluster it gets a key and a certificate ``CN=<principal>``
signed by the local CA of ``<state_dir>/kafka/tls``. Either way the principal's client
settings are written to ``<state_dir>/credentials/<principal>.toml`` (owner-only), which its
process loads with ``sgb --config``. Only principals the declaration has (broker/cluster/acls.py) get
credentials; the passwords themselves are never printed or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported at run time, not in the stubs
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from broker.clients import admin_client
from broker.cluster.acls import ADMIN_PRINCIPAL, principals
from broker.cluster.security import (
    SCRAM,
    client_settings_file,
    credentials_dir,
    new_password,
    write_client_settings,
)
from broker.cluster.tls import LocalCA
from broker.exceptions import SgbError
from broker.logs import get_logger
from broker.settings import Settings
from schemas.topics import TopicDeclaration

log = get_logger("broker.credentials")
SCRAM_ITERATIONS = 8192


class CredentialsError(SgbError):
    """A credential could not be created, rotated or listed."""


@dataclass(frozen=True)
class CredentialState:
    """One declared principal as ``sgb credentials list`` shows it."""

    principal: str
    role: str
    on_cluster: bool | None  # SCRAM credential present (None: not asked, e.g. certificates)
    settings_file: Path | None


def _kind(settings: Settings) -> str:
    if settings.security_protocol == "SASL_SSL" and settings.sasl_mechanism == SCRAM:
        return "scram"
    if settings.security_protocol == "SSL":
        return "certificate"
    msg = (
        f"Credentials are made on a secured cluster, connected as {ADMIN_PRINCIPAL}: run with "
        f"--config <state_dir>/credentials/{ADMIN_PRINCIPAL}.toml "
        f"(security is {settings.security_protocol})."
    )
    raise CredentialsError(msg)


def _declared(declaration: TopicDeclaration) -> dict[str, str]:
    return {p.name: p.role for p in principals(declaration)}


def _check_principal(principal: str, declaration: TopicDeclaration) -> None:
    if principal not in _declared(declaration):
        msg = (
            f"{principal!r} is not a declared principal (see `sgb credentials list`; principals follow "
            "from deploy/topics.yaml)."
        )
        raise CredentialsError(msg)


def scram_users(settings: Settings, names: list[str], timeout: float = 30.0) -> dict[str, bool]:
    """Which of ``names`` have a SCRAM credential on the cluster."""
    admin = admin_client(settings)
    try:
        futures: dict[str, Any] = admin.describe_user_scram_credentials(  # type: ignore[assignment]
            names, request_timeout=timeout
        )
    except KafkaException as exc:
        msg = f"Kafka at {settings.bootstrap} refused to describe credentials: {exc.args[0].str()}."
        raise CredentialsError(msg) from None
    out = {}
    for name, future in futures.items():
        try:
            out[name] = bool(future.result().scram_credential_infos)
        except KafkaException as exc:
            if exc.args[0].name() != "RESOURCE_NOT_FOUND":
                msg = f"Kafka at {settings.bootstrap} refused to describe credentials: {exc.args[0].str()}."
                raise CredentialsError(msg) from None
            out[name] = False
    return out


def _set_scram(settings: Settings, principal: str, password: str, timeout: float = 30.0) -> None:
    upsert = UserScramCredentialUpsertion(
        principal, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password.encode()
    )
    admin = admin_client(settings)  # kept alive until the futures resolve
    futures = admin.alter_user_scram_credentials([upsert], request_timeout=timeout)
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:
            msg = f"Kafka refused to set the SCRAM credential of {principal}: {exc.args[0].str()}."
            raise CredentialsError(msg) from None


def issue(settings: Settings, principal: str, declaration: TopicDeclaration, *, rotate: bool = False) -> Path:
    """Create (or, with ``rotate``, replace) the credential of ``principal``; returns the path of
    the client settings file written for it."""
    _check_principal(principal, declaration)
    kind = _kind(settings)
    ca_location = str(settings.ssl_ca_location) if settings.ssl_ca_location else None
    values = {"bootstrap_servers": settings.bootstrap, "security_protocol": settings.security_protocol}
    if ca_location:
        values["ssl_ca_location"] = ca_location
    if kind == "scram":
        exists = scram_users(settings, [principal])[principal]
        _refuse(principal, exists, rotate)
        password = new_password()
        _set_scram(settings, principal, password)
        values.update(sasl_mechanism=SCRAM, sasl_username=principal, sasl_password=password)
    else:
        ca = LocalCA(settings.tls_dir)
        if not ca.exists():
            msg = (
                f"There is no local certificate authority in {ca.folder}; start the local broker with "
                "`sgb kafka start --security mtls` first."
            )
            raise CredentialsError(msg)
        folder = credentials_dir(settings) / principal
        _refuse(principal, (folder / f"{principal}.pem").is_file(), rotate)
        issued = ca.issue(principal, folder)
        values.update(ssl_certificate_location=str(issued.cert), ssl_key_location=str(issued.key))
    written = write_client_settings(settings, principal, values)
    log.info("credential rotated" if rotate else "credential created", principal=principal, kind=kind)
    return written


def _refuse(principal: str, exists: bool, rotate: bool) -> None:
    if exists and not rotate:
        msg = f"{principal} already has a credential; `sgb credentials rotate {principal}` replaces it."
        raise CredentialsError(msg)
    if not exists and rotate:
        msg = f"{principal} has no credential to rotate; `sgb credentials create {principal}` makes one."
        raise CredentialsError(msg)


def states(settings: Settings, declaration: TopicDeclaration) -> list[CredentialState]:
    """Every declared principal, whether it has a credential, and its client settings file."""
    declared = _declared(declaration)
    on_cluster: dict[str, bool] = {}
    if _kind(settings) == "scram":
        on_cluster = scram_users(settings, list(declared))
    out = []
    for name, role in declared.items():
        path = client_settings_file(settings, name)
        out.append(CredentialState(name, role, on_cluster.get(name), path if path.is_file() else None))
    return out
