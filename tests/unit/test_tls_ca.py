"""The stack's certificate authority (tls_ca.py): made once, its key private, and a certificate it issues is
accepted by a verifying TLS client for the names it was issued for and refused for any other name or with
another project's authority, over a real TLS connection on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from celery_cli import tls_ca
from celery_cli.settings import resolve_project


@pytest.fixture
def state(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def handshake(issued: tls_ca.Issued, authority: Path, server_name: str, tmp_path: Path) -> None:
    """One TLS handshake from a client that trusts only `authority` and checks `server_name`, against a server
    on 127.0.0.1 presenting `issued`; raises ssl.SSLCertVerificationError when the client refuses it."""
    (tmp_path / "leaf.pem").write_bytes(issued.certificate)
    (tmp_path / "leaf.key").write_bytes(issued.key)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the client refused: the test reads its side

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client_context = ssl.create_default_context(cafile=str(authority))
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname=server_name) as secured,
        ):
            assert secured.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        server.join(5)
        listener.close()


def test_the_authority_is_made_once_and_its_key_is_readable_by_its_owner_only(state: Path) -> None:
    project = resolve_project(state, "demo")
    first = tls_ca.ensure_authority(project)
    made = first.read_bytes()
    assert tls_ca.ensure_authority(project) == first and first.read_bytes() == made, "made once"
    key = tls_ca.ca_dir(project) / "ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(tls_ca.ca_dir(project).stat().st_mode) == 0o700
    assert tls_ca.issue(project, ["broker"]).authority == made


def test_a_certificate_it_issues_is_verified_for_its_names_and_refused_for_others(state: Path) -> None:
    project = resolve_project(state, "demo")
    issued = tls_ca.issue(project, ["broker", "localhost", "127.0.0.1"])
    authority = tls_ca.ca_file(project)
    handshake(issued, authority, "localhost", state)
    handshake(issued, authority, "broker", state)
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(issued, authority, "backend", state)
    other = tls_ca.ensure_authority(resolve_project(state, "other"))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(issued, other, "localhost", state)


def test_an_unreadable_authority_is_one_clear_error_that_keeps_it(state: Path) -> None:
    from celery_cli.errors import TcelError

    project = resolve_project(state, "demo")
    tls_ca.ensure_authority(project)
    (tls_ca.ca_dir(project) / "ca.key").write_text("not a key")
    with pytest.raises(TcelError, match="cannot be read") as raised:
        tls_ca.issue(project, ["broker"])
    assert "remove" in (raised.value.hint or "") and (tls_ca.ca_dir(project) / "ca.key").exists()
