"""Carrying the worker (and Flower's, the exporter's) image to every node: --registry, else a registry service tcel
runs on this manager with a pull-through mirror on every other node, both over TLS and behind a generated login
(registry_config.py), so that every node pulls it as 127.0.0.1:PORT from its own loopback; tagging and pushing
the images there, each named by the digest the push returned."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from ...credentials import Credentials
from ...errors import ImageError, ServiceUnreachable
from ...output import Progress
from ...settings import Project
from ..base import UpReport
from ..docker_client import engine_errors
from ..ports import EVERY_INTERFACE, PortChooser
from . import docker_api, readiness, registry_config
from .docker_api import Service
from .service_spec import create_service

if TYPE_CHECKING:
    import docker

REGISTRY_WAIT = 60.0


def registry(
    client: docker.DockerClient,
    project: Project,
    image: str,
    kept_port: str,
    existing: dict[str, Service],
    network: str,
    access: Credentials,
    report: UpReport,
    progress: Progress,
) -> str:
    """The address of the registry tcel runs from `image` (made now if missing, with its mirrors), once every
    node can pull from it and this engine has logged in to it."""
    manager = docker_api.manager_id(client)
    with engine_errors():
        nodes = docker_api.nodes(client)
    if "registry" in existing:
        port = existing["registry"].published_port or 5000
    else:
        port = PortChooser(project.name, EVERY_INTERFACE).choose(
            "registry", None, None, int(kept_port or 0) or 5000, noted=False
        )
        progress(f"creating service {project.container('registry')} on port {port}")
        central = registry_config.central_spec(project, image, port, access, [n for n in nodes if n.id == manager])
        existing["registry"] = create_service(client, project, central, network, 1, [f"node.id=={manager}"])
        report.created.append(existing["registry"].name)
    if "registry-mirror" not in existing:
        mirror = registry_config.mirror_spec(project, image, port, access, [n for n in nodes if n.id != manager])
        others = [f"node.id!={manager}"]
        existing["registry-mirror"] = create_service(client, project, mirror, network, 0, others, mode="global")
        report.created.append(existing["registry-mirror"].name)
    address = f"127.0.0.1:{port}"
    _wait_registry(project, address, access, existing["registry"], progress)
    _wait_mirrors(client, existing["registry-mirror"], progress)
    log_in(client, address, access)
    return address


def log_in(client: docker.DockerClient, address: str, access: Credentials) -> None:
    """Log this engine's client in to the registry tcel runs: docker-py then sends the login with every push and
    with every service it creates or updates on an image there (the `--with-registry-auth` of the CLI), and
    Swarm hands it to each node that pulls it. Only in this process's memory, never in ~/.docker/config.json."""
    import docker

    try:
        client.login(access.registry_user, access.registry_password, registry=address, reauth=True)
    except docker.errors.APIError as exc:
        raise ImageError(
            f"the registry at {address} refuses tcel's login ({exc.explanation or exc})",
            hint="see 'tcel logs registry'; 'tcel down' and 'tcel up --swarm' make it again with the kept login",
        ) from None


def push(client: docker.DockerClient, image: str, registry: str, progress: Progress, what: str = "worker image") -> str:
    """Tag the worker (or Flower) image into the registry and push it; the name every node pulls,
    `REGISTRY/NAME:TAG@sha256:...`: its tag a hash of the files it is built from, its digest the one the push
    returned, so that an image pushed later under the same tag is never run (prepull.py pulls it on every node
    first: Docker 20.10 fails one of two pulls by digest that start together on a node)."""
    import docker

    repository, _, tag = image.rpartition(":")
    target = f"{registry}/{repository}"
    progress(f"pushing {target}:{tag}")
    client.images.get(image).tag(target, tag)
    failed: str | None = None
    digest = ""
    try:
        for event in client.images.push(target, tag=tag, stream=True, decode=True):
            if "error" in event:
                failed = event["error"]
                break
            digest = (event.get("aux") or {}).get("Digest") or digest
    except docker.errors.APIError as exc:
        failed = exc.explanation or str(exc)
    if failed is not None:
        untag(client, f"{target}:{tag}")  # nothing of a failed push stays
        raise ImageError(
            f"cannot push the {what} to {registry}: {failed}",
            hint="check --registry: every node must be able to pull from it",
        )
    return f"{target}:{tag}@{digest}" if digest else f"{target}:{tag}"


def untag_pushed(client: docker.DockerClient, registry: str) -> None:
    """Drop this engine's tags and digest references of worker, Flower and exporter images pushed to a registry
    that is going away (the images stay while another tag or a container uses them)."""
    for repository in ("tcel-worker", "tcel-flower", "tcel-metrics"):
        # its tags, and the digests the pushes recorded (by which the services named it)
        for reference in docker_api.image_references(client, f"{registry}/{repository}"):
            if reference.startswith(f"{registry}/"):
                untag(client, reference)


def untag(client: docker.DockerClient, tag: str) -> None:
    """Drop one tag of this engine's (the image stays while another tag or a container uses it)."""
    import docker

    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(tag, noprune=True)


def _wait_registry(project: Project, address: str, access: Credentials, service: Service, progress: Progress) -> None:
    """Wait until the registry tcel runs answers its API root over TLS (its certificate verified against the
    stack's authority) with the login; fail at once when its tasks keep failing."""
    import base64
    import ssl
    import urllib.error
    import urllib.request

    from ... import tls_ca

    context = ssl.create_default_context(cafile=str(tls_ca.ca_file(project)))
    login = base64.b64encode(f"{access.registry_user}:{access.registry_password}".encode()).decode()
    request = urllib.request.Request(f"https://{address}/v2/", headers={"Authorization": f"Basic {login}"})
    since = time.time()
    deadline = time.monotonic() + REGISTRY_WAIT
    while True:
        readiness.check_tasks("registry", service, since)
        try:
            with urllib.request.urlopen(request, timeout=2, context=context):
                return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise ServiceUnreachable(
                    f"the registry at {address} does not answer ({exc})",
                    hint="see 'tcel logs registry', or pass --registry HOST:PORT",
                ) from None
        progress(f"waiting for the registry at {address}")
        time.sleep(0.3)


def _wait_mirrors(client: docker.DockerClient, mirror: Service, progress: Progress) -> None:
    """Wait until the registry mirror runs on every other node that takes tasks: a worker placed on a node
    before its mirror listens cannot pull its image there (Swarm rejects the task, and `up` gives up after a
    few such failures). A mirror's task runs only once its healthcheck has had an answer from it: the registry
    starts listening only after it has reached the central one, which took 5 s (a lost DNS query) in some
    starts here."""
    manager = docker_api.manager_id(client)
    since = time.time()
    deadline = time.monotonic() + REGISTRY_WAIT
    while True:
        with engine_errors():
            nodes = {n.id for n in docker_api.nodes(client) if n.id != manager and n.takes_tasks}
            missing = nodes - {task.node_id for task in mirror.running_tasks()}
        if not missing:
            return
        readiness.check_tasks("registry-mirror", mirror, since)
        if time.monotonic() > deadline:
            raise ServiceUnreachable(
                f"the registry mirror ({mirror.image}) does not run and answer its healthcheck on "
                f"{len(missing)} node(s) after {REGISTRY_WAIT:.0f}s",
                hint=f"see 'docker service ps {mirror.name}'; an image other than registry:2 needs the wget its "
                "healthcheck runs (TCEL_REGISTRY_IMAGE)",
            )
        progress(f"waiting for the registry mirror on {len(missing)} node(s)")
        time.sleep(0.3)
