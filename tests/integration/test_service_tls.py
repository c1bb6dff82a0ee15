"""A stack published on every interface (`up --bind 0.0.0.0`) serves TLS from its own authority: the broker's,
backend's, Flower's and the exporter's published ports answer a TLS handshake (a plain AMQP, RESP or HTTP client
gets nothing it understands), verified for 127.0.0.1 against the stack's authority and refused against another
one; a task still runs. Tests reach the ports through 127.0.0.1 only, which the
certificates name."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_cli import tls_ca
from celery_cli.settings import resolve_project
from tests.conftest import StackProject, free_port, make_project

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def tls_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    with make_project(engine, tmp_path_factory.mktemp("tls")) as project:
        project.env.update(TCEL_FLOWER_PORT=str(free_port()), TCEL_METRICS_PORT=str(free_port()))
        result = project.tcel("up", "--bind", "0.0.0.0", "--flower", "--metrics")
        assert result.code == 0, result.stderr + project.tcel("logs", "--tail", "15").stdout
        yield project


def ports(project: StackProject) -> dict[str, int]:
    access = project.connection
    return {
        "broker": access.broker_port,
        "backend": access.backend_port,
        "flower": access.flower_port,
        "metrics": access.metrics_port,
    }


def handshake(port: int, cafile: str) -> str:
    """A verifying TLS handshake with 127.0.0.1:port; the protocol version agreed."""
    context = ssl.create_default_context(cafile=cafile)
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        return str(tls.version())


def plain_answer(port: int, hello: bytes) -> bytes:
    """What the port answers a client speaking its protocol in clear text (b"" when it closes)."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        raw.sendall(hello)
        try:
            return raw.recv(64)
        except (ConnectionResetError, TimeoutError):
            return b""


PLAIN_HELLOS = {
    "broker": (b"AMQP\x00\x00\x09\x01", b"\x01\x00\x00"),  # a plain broker answers Connection.Start (a method frame)
    "backend": (b"PING\r\n", b"-NOAUTH"),  # a plain Redis asks for the password
    "flower": (b"GET /healthcheck HTTP/1.0\r\n\r\n", b"HTTP/1."),
    "metrics": (b"GET /metrics HTTP/1.0\r\n\r\n", b"HTTP/1."),
}


def test_every_published_port_speaks_tls_verified_by_the_stacks_authority(tls_stack: StackProject) -> None:
    access = tls_stack.connection
    for service, port in ports(tls_stack).items():
        assert handshake(port, access.ca_file).startswith("TLS"), service
        hello, plain_reply = PLAIN_HELLOS[service]
        answer = plain_answer(port, hello)
        assert not answer.startswith(plain_reply), (service, answer)


def test_a_client_trusting_another_authority_is_refused(tls_stack: StackProject, tmp_path: Path, monkeypatch) -> None:
    published = ports(tls_stack)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    other = tls_ca.ensure_authority(resolve_project(tmp_path, "other"))
    for service, port in published.items():
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            handshake(port, str(other))
        assert service


def test_a_task_runs_over_tls(tls_stack: StackProject) -> None:
    added = tls_stack.tcel("add", "2", "3", "--wait")
    assert added.code == 0 and "5" in added.stdout, added.stderr
    env = tls_stack.tcel("env")
    assert "amqps://" in env.stdout and "rediss://" in env.stdout and tls_stack.connection.ca_file in env.stdout


def test_status_reads_every_part_over_tls(tls_stack: StackProject) -> None:
    """`tcel status` reaches the broker (queues and the workers' replies through Celery's client), the backend,
    Flower and the exporter over TLS, each verified against the stack's authority: exit 0, every part ready."""
    result = tls_stack.tcel("status", "--json")
    view = json.loads(result.stdout)
    assert result.code == 0, (view["errors"], result.stderr)
    assert view["healthy"] is True and view["errors"] == {}
    shown = {s["service"]: (s["state"], s["ready"]) for s in view["services"]}
    assert {"broker", "backend", "worker", "flower", "metrics"} <= shown.keys()
    assert set(shown.values()) == {("running", True)}, shown
    assert view["workers"] and all(w["answering"] for w in view["workers"])
    urls = {s["service"]: s["url"] for s in view["services"] if s["url"]}
    assert urls["flower"].startswith("https://") and urls["metrics"].startswith("https://"), urls
