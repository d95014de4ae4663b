"""The local certificate authority: made at run time with ``cryptography``, never committed.

``sgb kafka start --security ...`` makes a CA and a broker certificate under
``<state_dir>/kafka/tls/``; ``sgb credentials create`` signs client certificates with the
same CA for mutual TLS. Keys are EC P-256, written as unencrypted PKCS#8 PEM with owner-only
permissions in an owner-only folder (the broker reads PEM key stores directly, no keytool).
A certificate's subject is ``CN=<principal>``; the broker maps it to the bare principal name
so one set of ACLs serves SCRAM users and certificates alike.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.exceptions import SgbError

CA_DAYS = 365
LEAF_DAYS = 90
CA_NAME = "sgb local CA"


class TlsError(SgbError):
    """The local certificate authority or a certificate could not be made or read."""


@dataclass(frozen=True)
class Issued:
    """A key and certificate on disk: ``key`` (PKCS#8), ``cert`` (leaf then CA), ``bundle`` (both)."""

    key: Path
    cert: Path
    bundle: Path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it owner-only (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new owner-only (0600) file, replacing any old one atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class LocalCA:
    """The CA in ``folder`` (``ca.pem``, ``ca.key``); :meth:`ensure` makes it the first time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert_path = folder / "ca.pem"
        self.key_path = folder / "ca.key"

    def exists(self) -> bool:
        return self.cert_path.is_file() and self.key_path.is_file()

    def ensure(self) -> LocalCA:
        """Make the CA if there is none; returns self."""
        if self.exists():
            return self
        private_dir(self.folder)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(CA_NAME))
            .issuer_name(_name(CA_NAME))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private(self.key_path, _key_pem(key))
        write_private(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return self

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            msg = f"The local certificate authority in {self.folder} cannot be read ({type(exc).__name__})."
            raise TlsError(msg) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            msg = f"The local certificate authority's key {self.key_path} is not an EC key."
            raise TlsError(msg)
        return cert, key

    def issue(self, common_name: str, folder: Path, *, server: bool = False) -> Issued:
        """A new key and a certificate for ``CN=common_name`` in ``folder`` (``<cn>.key``,
        ``<cn>.pem``, ``<cn>.bundle.pem``), replacing any old ones. A server certificate is
        valid for 127.0.0.1 and localhost and may also act as a client (brokers connect to
        each other and to the controllers with it)."""
        ca_cert, ca_key = self.ensure()._load()
        private_dir(folder)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = _key_pem(key)
        pem = serialization.Encoding.PEM
        chain = cert.public_bytes(pem) + ca_cert.public_bytes(pem)
        issued = Issued(
            folder / f"{common_name}.key", folder / f"{common_name}.pem", folder / f"{common_name}.bundle.pem"
        )
        write_private(issued.key, key_pem)
        write_private(issued.cert, chain)
        # The broker's PEM key store wants the key and its chain in one file.
        write_private(issued.bundle, key_pem + chain)
        return issued


def subject_cn(cert_path: Path) -> str:
    """The common name of the (first) certificate in ``cert_path``."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
