"""A stack's own certificate authority, for what tcel serves across machines (the registry, RabbitMQ, Redis,
Flower, the exporter): made once per project with `cryptography` and kept beside the state file, the key
readable by its owner only. It signs each service's certificate for the names and addresses clients reach it
by; clients (the CLI, the workers, Docker engines, Prometheus) verify the service against its certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TcelError
from .settings import Project

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest validity Apple's and browsers' clients accept for a server certificate


@dataclass(frozen=True)
class Issued:
    """A service's certificate and its private key, PEM-encoded, and the authority's certificate that signs it."""

    certificate: bytes
    key: bytes
    authority: bytes


def ca_dir(project: Project) -> Path:
    return project.state_dir / f"{project.name}-ca"


def ca_file(project: Project) -> Path:
    """The authority's certificate (public): what a client is given to verify the stack's services."""
    return ca_dir(project) / "ca.crt"


def ensure_authority(project: Project) -> Path:
    """The project's authority, made the first time; the path of its certificate."""
    _authority(project)
    return ca_file(project)


def issue(project: Project, names: list[str], days: int = LEAF_DAYS) -> Issued:
    """A server certificate signed by the project's authority for `names`: host names, IPv4 or IPv6 addresses
    (the first is its common name). A new key each time: nothing of a service's key is kept on the host."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names:
        raise ValueError("a certificate names at least one host")
    ca_key, ca_cert = _authority(project)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a node whose clock is a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ca_cert.public_bytes(serialization.Encoding.PEM),
    )


def _general_name(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _authority(project: Project) -> tuple[EllipticCurvePrivateKey, x509.Certificate]:
    """The authority's key and certificate, read from its folder, or made there once."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = ca_dir(project)
    key_path, cert_path = folder / "ca.key", folder / "ca.crt"
    if not key_path.exists():
        _make_authority(project, folder)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TcelError(
            f"the certificate authority in {folder} cannot be read ({exc})",
            hint=f"restore it from a backup; only to start afresh, remove {folder} and run 'tcel up' again",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TcelError(f"{key_path} is not the key tcel made", hint=f"remove {folder} and run 'tcel up' again")
    return key, cert


def _make_authority(project: Project, folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tcel {project.name} authority"[:64])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # the certificate first: the key's presence is what says the authority exists
    _write(folder / "ca.crt", certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(folder / "ca.key", key_bytes, 0o600)


def _write(path: Path, content: bytes, mode: int) -> None:
    """Written whole or not at all, with its mode from the start (the key is never readable by others)."""
    partial = path.with_suffix(path.suffix + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.replace(partial, path)
