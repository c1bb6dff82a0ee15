"""An amqps:// broker URL: the server's certificate is verified and its name checked (issue 25 item 2's client
part), against a real TLS server on 127.0.0.1 whose certificate names only `localhost`."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import amqp
import pytest

from celery_cli.broker_tls import AMQPS_PORT, tls_of
from celery_cli.publish_confirms import _connection_settings


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for DNS name `localhost` (it is its own authority), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """A TLS listener on 127.0.0.1: it completes handshakes (recorded) and then closes the connection."""
    cert_file, key_file = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    handshakes: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                with context.wrap_socket(raw, server_side=True):
                    handshakes.append("done")
            except (ssl.SSLError, OSError):
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], cert_file, handshakes
    stop.set()
    thread.join(5)
    listener.close()


def _connect(url: str) -> None:
    connection = amqp.Connection(**_connection_settings(url), connect_timeout=5)
    try:
        connection.connect()
    finally:
        connection.collect()


def test_a_certificate_for_another_name_is_refused(tls_server, monkeypatch) -> None:
    port, cert_file, handshakes = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted, but issued to localhost only
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|doesn't match|not valid for"):
        _connect(f"amqps://u:p@127.0.0.1:{port}//")
    assert handshakes == []


def test_an_untrusted_certificate_is_refused(tls_server, monkeypatch) -> None:
    port, _, handshakes = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"self.signed|unable to get local issuer"):
        _connect(f"amqps://u:p@localhost:{port}//")
    assert handshakes == []


def test_the_right_name_and_a_trusted_authority_complete_the_handshake(tls_server, monkeypatch) -> None:
    port, cert_file, handshakes = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with pytest.raises(Exception) as failure:  # the listener speaks no AMQP: it closes after the handshake
        _connect(f"amqps://u:p@localhost:{port}//")
    assert not isinstance(failure.value, ssl.SSLCertVerificationError), failure.value
    assert handshakes == ["done"]


def test_amqps_defaults_to_port_5671_and_celery_gets_the_same_options() -> None:
    assert _connection_settings("amqps://u:p@broker.example//")["host"] == f"broker.example:{AMQPS_PORT}"
    assert _connection_settings("amqp://u:p@broker.example//")["ssl"] is False
    options = tls_of("amqps://u:p@broker.example:5671//")
    assert options == {"context": {"check_hostname": True}, "server_hostname": "broker.example"}
    assert tls_of("amqp://u:p@broker.example//") is False
    given = tls_of("amqps://u:p@broker.example:5671//", "/stack/ca.crt")  # a client trusting a stack's authority
    assert given == {
        "context": {"check_hostname": True, "cafile": "/stack/ca.crt"},
        "server_hostname": "broker.example",
    }
