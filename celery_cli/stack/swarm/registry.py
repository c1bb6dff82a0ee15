"""Carrying the worker (and Flower's, the exporter's) image to every node: --registry, else a registry service tcel
runs on this manager with a pull-through mirror on every other node, so that every node pulls it as
127.0.0.1:PORT (an address every engine trusts without TLS); tagging and pushing the images there."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from ...errors import ImageError, ServiceUnreachable
from ...output import Progress
from ...settings import Project
from ..base import UpReport
from ..docker_client import engine_errors
from ..ports import EVERY_INTERFACE, PortChooser
from ..specs import ServiceSpec
from . import docker_api, readiness
from .docker_api import REGISTRY_PORT, Service
from .service_spec import create_service

if TYPE_CHECKING:
    import docker

REGISTRY_WAIT = 60.0
# the mirror answers its API root (the official registry:2 image has busybox's wget, as the stand-in has)
MIRROR_HEALTH = ("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{REGISTRY_PORT}/v2/")


def registry(
    client: docker.DockerClient,
    project: Project,
    image: str,
    kept_port: str,
    existing: dict[str, Service],
    network: str,
    report: UpReport,
    progress: Progress,
) -> str:
    """The address of the registry tcel runs from `image` (made now if missing, with its mirrors), once every
    node can pull from it."""
    manager = docker_api.manager_id(client)
    if "registry" in existing:
        port = existing["registry"].published_port or 5000
    else:
        port = PortChooser(project.name, EVERY_INTERFACE).choose(
            "registry", None, None, int(kept_port or 0) or 5000, noted=False
        )
        progress(f"creating service {project.container('registry')} on port {port}")
        central = ServiceSpec(
            "registry",
            None,
            image,
            ports={REGISTRY_PORT: (EVERY_INTERFACE, port)},
            volumes={project.volume("registry"): "/var/lib/registry"},
        )
        existing["registry"] = create_service(client, project, central, network, 1, [f"node.id=={manager}"])
        report.created.append(existing["registry"].name)
    if "registry-mirror" not in existing:
        mirror = ServiceSpec(
            "registry-mirror",
            None,
            image,
            # the central one, over the overlay network
            environment={"REGISTRY_PROXY_REMOTEURL": f"http://registry:{REGISTRY_PORT}"},
            ports={REGISTRY_PORT: (EVERY_INTERFACE, port)},
            health=MIRROR_HEALTH,
        )
        others = [f"node.id!={manager}"]
        existing["registry-mirror"] = create_service(client, project, mirror, network, 0, others, mode="global")
        report.created.append(existing["registry-mirror"].name)
    address = f"127.0.0.1:{port}"
    _wait_registry(address, existing["registry"], progress)
    _wait_mirrors(client, existing["registry-mirror"], progress)
    return address


def push(client: docker.DockerClient, image: str, registry: str, progress: Progress, what: str = "worker image") -> str:
    """Tag the worker (or Flower) image into the registry and push it; the name every node pulls. Its tag is a
    hash of the files it is built from, so it names one build. (Not pinned by the digest the push returns: Docker
    20.10 fails one of two pulls by digest that start together on a node, and in a clean CI run every retry of a
    node's two workers failed that way.)"""
    import docker

    repository, _, tag = image.rpartition(":")
    target = f"{registry}/{repository}"
    progress(f"pushing {target}:{tag}")
    client.images.get(image).tag(target, tag)
    failed: str | None = None
    try:
        for event in client.images.push(target, tag=tag, stream=True, decode=True):
            if "error" in event:
                failed = event["error"]
                break
    except docker.errors.APIError as exc:
        failed = exc.explanation or str(exc)
    if failed is not None:
        untag(client, f"{target}:{tag}")  # nothing of a failed push stays
        raise ImageError(
            f"cannot push the {what} to {registry}: {failed}",
            hint="check --registry: every node must be able to pull from it",
        )
    return f"{target}:{tag}"


def untag_pushed(client: docker.DockerClient, registry: str) -> None:
    """Drop this engine's tags of worker, Flower and exporter images pushed to a registry that is going away (the
    images stay while another tag or a container uses them)."""
    pushed = [
        image
        for repository in ("tcel-worker", "tcel-flower", "tcel-metrics")
        for image in client.images.list(name=f"{registry}/{repository}")
    ]
    for image in pushed:
        for tag in image.tags:
            if tag.startswith(f"{registry}/"):
                untag(client, tag)


def untag(client: docker.DockerClient, tag: str) -> None:
    """Drop one tag of this engine's (the image stays while another tag or a container uses it)."""
    import docker

    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(tag, noprune=True)


def _wait_registry(address: str, service: Service, progress: Progress) -> None:
    """Wait until the registry tcel runs answers its API root; fail at once when its tasks keep failing."""
    import urllib.error
    import urllib.request

    since = time.time()
    deadline = time.monotonic() + REGISTRY_WAIT
    while True:
        readiness.check_tasks("registry", service, since)
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
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
