"""The registry tcel runs for Swarm, and its mirror on every other node, as someone else on the network meets them:
their published ports speak only TLS (a certificate from the stack's authority), refuse to list or take an image
without the generated login and give both with it; the workers run the image by the digest the push returned, so
one pushed later under the same tag is never run; and the stack still runs a task on every node."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from celery_cli.names import LABEL_PROJECT
from celery_cli.settings import setting
from tests.conftest import StackProject, make_project
from tests.faults.conftest import results, tally
from tests.swarm.conftest import Lab, swarm_lab, wait_healthy
from tests.swarm.test_swarm_stack import lab_nodes

pytestmark = pytest.mark.swarm

WORKERS = 3


@pytest.fixture(scope="module")
def registry_stack(lab: Lab, tmp_path_factory) -> Iterator[StackProject]:
    loaded = swarm_lab("load", setting("TCEL_REGISTRY_IMAGE"))
    assert loaded.returncode == 0, loaded.stderr
    with make_project(lab.engine, tmp_path_factory.mktemp("swarm-registry")) as project:
        try:
            up = project.tcel("up", "--swarm", "--workers", str(WORKERS))
            assert up.code == 0, up.stderr
            yield project
        finally:
            project.tcel("down", "--volumes")


def authority(stack: StackProject) -> str:
    from celery_cli import tls_ca
    from celery_cli.settings import resolve_project

    return str(tls_ca.ca_file(resolve_project(stack.directory, stack.name)))


def kept(stack: StackProject) -> dict[str, str]:
    from celery_cli.credentials import kept as kept_settings
    from celery_cli.settings import resolve_project

    return kept_settings(resolve_project(stack.directory, stack.name))


def endpoints(lab: Lab, stack: StackProject) -> dict[str, tuple[str, int]]:
    """The central registry's published port on this manager (127.0.0.1), and a mirror's on a lab node (its
    address in the lab's namespace)."""
    port = int(kept(stack)["TCEL_REGISTRY_PORT"])
    manager = lab.engine.info()["Swarm"]["NodeID"]
    node = next(n for n in lab.engine.nodes.list() if n.id != manager)
    return {"registry": ("127.0.0.1", port), "mirror": (node.attrs["Status"]["Addr"], port)}


def request(stack: StackProject, where: tuple[str, int], method: str, path: str, login: bool) -> tuple[int, dict]:
    """One HTTPS request, the server's certificate verified against the stack's authority for the address."""
    context = ssl.create_default_context(cafile=authority(stack))
    connection = http.client.HTTPSConnection(*where, context=context, timeout=10)
    # a v2 manifest, whose digest is the one the push returned (without it the registry converts to schema 1)
    headers = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    if login:
        access = stack.connection
        token = base64.b64encode(f"{access.registry_user}:{access.registry_password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        connection.request(method, path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status, dict(answer.getheaders())
    finally:
        connection.close()


@pytest.mark.parametrize("which", ["registry", "mirror"])
def test_anonymous_reads_and_pushes_are_refused(lab: Lab, registry_stack: StackProject, which: str):
    where = endpoints(lab, registry_stack)[which]
    assert request(registry_stack, where, "GET", "/v2/_catalog", login=False)[0] == 401
    assert request(registry_stack, where, "POST", "/v2/tcel-worker/blobs/uploads/", login=False)[0] == 401


def test_with_the_login_the_registry_lists_and_takes_images(lab: Lab, registry_stack: StackProject):
    where = endpoints(lab, registry_stack)["registry"]
    status, _ = request(registry_stack, where, "GET", "/v2/_catalog", login=True)
    assert status == 200
    status, headers = request(registry_stack, where, "POST", "/v2/tcel-worker/blobs/uploads/", login=True)
    assert status == 202, headers
    upload = urlsplit(headers["Location"])  # nothing of it stays
    assert request(registry_stack, where, "DELETE", f"{upload.path}?{upload.query}", login=True)[0] == 204


def test_with_the_login_a_mirror_serves_the_worker_image(lab: Lab, registry_stack: StackProject):
    where = endpoints(lab, registry_stack)["mirror"]
    image = worker_image(lab, registry_stack)
    name, _, digest = image.partition("/")[2].partition("@")
    status, headers = request(registry_stack, where, "HEAD", f"/v2/{name.partition(':')[0]}/manifests/{digest}", True)
    assert status == 200 and headers.get("Docker-Content-Digest") == digest, headers


@pytest.mark.parametrize("which", ["registry", "mirror"])
def test_published_ports_speak_tls_only_from_the_stack_s_authority(lab: Lab, registry_stack: StackProject, which):
    host, port = endpoints(lab, registry_stack)[which]
    with socket.create_connection((host, port), timeout=10) as plain:  # plain HTTP gets no registry answer
        plain.sendall(f"GET /v2/_catalog HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        first = plain.recv(4096)
    assert first.startswith(b"HTTP/1.0 400") and b"HTTPS server" in first, first
    verified = ssl.create_default_context(cafile=authority(registry_stack))
    with socket.create_connection((host, port), timeout=10) as raw, verified.wrap_socket(raw, server_hostname=host):
        pass  # the handshake verifies the certificate and its name
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection((host, port), timeout=10) as raw,
        ssl.create_default_context().wrap_socket(raw, server_hostname=host),
    ):
        pass


def worker_image(lab: Lab, stack: StackProject) -> str:
    return lab.engine.services.get(f"tcel-{stack.name}-worker").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def test_workers_run_the_pushed_digest(lab: Lab, registry_stack: StackProject):
    image = worker_image(lab, registry_stack)
    found = re.fullmatch(r"127\.0\.0\.1:\d+/(tcel-worker):([0-9a-f]{12})@(sha256:[0-9a-f]{64})", image)
    assert found, image
    name, tag, digest = found.groups()
    where = endpoints(lab, registry_stack)["registry"]
    status, headers = request(registry_stack, where, "HEAD", f"/v2/{name}/manifests/{tag}", login=True)
    assert status == 200 and headers.get("Docker-Content-Digest") == digest, headers
    worker = lab.engine.services.get(f"tcel-{registry_stack.name}-worker")
    running = worker.tasks(filters={"desired-state": "running"})
    assert running and {t["Spec"]["ContainerSpec"]["Image"] for t in running} == {image}


def test_the_login_is_in_no_service_s_spec(lab: Lab, registry_stack: StackProject):
    password = registry_stack.connection.registry_password
    assert password
    for service in lab.engine.services.list(filters={"label": f"{LABEL_PROJECT}={registry_stack.name}"}):
        assert password not in json.dumps(service.attrs["Spec"]), service.name


def test_a_task_runs_on_every_node(lab: Lab, registry_stack: StackProject):
    shown = wait_healthy(registry_stack)
    nodes = {f"celery@{s['hostname']}": s["node"] for s in shown["services"] if s["service"] == "worker"}
    expected = {}
    for n in range(12):
        sent = registry_stack.tcel("add", str(n), "1", "--quiet")
        assert sent.code == 0, sent.stderr
        expected[sent.stdout.strip()] = n + 1
    records = results(registry_stack, list(expected))
    right, lost = tally(records, expected)
    assert lost == 0, f"{right} of {len(expected)} came back"
    ran_on = {nodes[r["worker"]] for r in records.values()}
    assert set(lab_nodes(lab)) <= ran_on, f"tasks ran on {ran_on} only"
