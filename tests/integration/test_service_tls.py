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
from celery_cli.names import LABEL_SERVICE
from celery_cli.settings import resolve_project
from tests.conftest import StackProject, free_port, make_project

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def tls_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    with make_project(engine, tmp_path_factory.mktemp("tls")) as project:
        project.env.update(TCEL_FLOWER_PORT=str(free_port()), TCEL_METRICS_PORT=str(free_port()))
        result = project.tcel("up", "--bind", "0.0.0.0", "--flower", "--metrics", "--beat")
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


IPV6_LOOPBACK = "00000000000000000000000001000000"


def listening(project: StackProject, service: str) -> set[int]:
    """The TCP ports a service's container listens on beyond its loopback (read in the container through the
    engine, so that a port unpublished but open to the stack's network counts too). Loopback is left out: Docker's
    own DNS resolver listens on 127.0.0.11 in every container of a user-defined network."""
    container = next(c for c in project.containers() if c.labels.get(LABEL_SERVICE) == service)
    table = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).output.decode()
    rows = [line.split() for line in table.splitlines() if ":" in line and not line.lstrip().startswith("sl")]
    ports = set()
    for row in rows:
        address, port = row[1].rsplit(":", 1)
        loopback = address.endswith("7F") if len(address) == 8 else address == IPV6_LOOPBACK  # little-endian hex
        if row[3] == "0A" and not loopback:  # 0A: LISTEN
            ports.add(int(port, 16))
    return ports


def test_inside_the_network_nothing_listens_in_clear_text(tls_stack: StackProject) -> None:
    broker = listening(tls_stack, "broker")
    assert 5671 in broker and 5672 not in broker, broker  # AMQPS only; Erlang's own ports are not AMQP
    assert listening(tls_stack, "backend") == {6379}, "Redis listens on its TLS port only (port 0)"


def test_the_cli_refuses_a_broker_or_backend_its_authority_did_not_sign(
    tls_stack: StackProject, tmp_path: Path, monkeypatch
) -> None:
    """The CLI verifies what it talks to: given the stack's own URLs but another authority, it sends nothing and
    says which service it could not reach, in one line."""
    access = tls_stack.connection
    urls = access.on_host()
    state = tmp_path / "state"  # no stack here: the CLI has the URLs and TCEL_CA_FILE only
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    other = str(tls_ca.ensure_authority(resolve_project(tmp_path, "other")))
    env = {"XDG_STATE_HOME": str(state), "CELERY_BROKER_URL": urls["CELERY_BROKER_URL"]}
    untrusted_backend = urls["CELERY_RESULT_BACKEND_URL"].replace(access.ca_file, other)
    backend = urls["CELERY_RESULT_BACKEND_URL"]
    refused = {
        "broker": tls_stack.tcel(
            "add", "2", "3", env={**env, "TCEL_CA_FILE": other, "CELERY_RESULT_BACKEND_URL": backend}
        ),
        "backend": tls_stack.tcel(
            "results", env={**env, "TCEL_CA_FILE": urls["TCEL_CA_FILE"], "CELERY_RESULT_BACKEND_URL": untrusted_backend}
        ),
    }
    for service, result in refused.items():
        assert result.code == 4, (service, result.code, result.stdout, result.stderr)
        assert service in result.stderr and "Traceback" not in result.stderr, result.stderr


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
    assert {"broker", "backend", "worker", "beat", "flower", "metrics"} <= shown.keys()
    assert set(shown.values()) == {("running", True)}, shown
    assert view["workers"] and all(w["answering"] for w in view["workers"])
    urls = {s["service"]: s["url"] for s in view["services"] if s["url"]}
    assert urls["flower"].startswith("https://") and urls["metrics"].startswith("https://"), urls
