"""Low-level Docker engine access, as docker-py's own `api/` is to its `models/`: connecting, turning
docker-py's exceptions into tcel's, and the few container, network and volume calls the stack makes."""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import EngineUnreachable, PortInUse, TcelError
from ..names import (
    FLOWER_IMAGE_KIND,
    LABEL_IMAGE,
    LABEL_NUMBER,
    LABEL_PROJECT,
    LABEL_QUEUES,
    LABEL_SERVICE,
    SERVICES,
    WORKER_IMAGE_KIND,
)
from ..settings import Project
from .specs import WORKER_WARM_STOP_SIGNAL, ServiceSpec, stop_timeout

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names, or one clear error saying where tcel looked."""
    import docker

    try:
        return docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise _unreachable(exc) from None


@contextmanager
def engine_errors(streaming: bool = False) -> Iterator[None]:
    """Report a connection lost to the engine half-way through, or a request it refused, as one clear line.
    `streaming`: the block reads a stream from the engine (logs), which loses its connection as an OSError
    (a reset socket) or one of requests' errors (a chunked answer cut short)."""
    import docker
    import requests

    lost = (OSError, requests.exceptions.RequestException) if streaming else requests.exceptions.ConnectionError
    try:
        yield
    except docker.errors.APIError as exc:  # first: it is one of requests' errors too
        raise TcelError(f"the Docker engine refused: {exc.explanation or exc}", hint="see 'tcel status'") from None
    except lost as exc:
        raise _unreachable(exc) from None


def _unreachable(exc: Exception) -> EngineUnreachable:
    return EngineUnreachable(
        f"cannot reach the Docker engine at {engine_address()} ({type(exc).__name__})",
        hint="start Docker, or set DOCKER_HOST to an engine that runs",
    )


def project_filter(project: Project) -> dict[str, str]:
    return {"label": f"{LABEL_PROJECT}={project.name}"}


# Swarm puts this label on every task's container: those carry the project's labels too, but belong to its
# services (swarm.py), never to the plain-container stack
SWARM_TASK_LABEL = "com.docker.swarm.task.id"


def containers(client: docker.DockerClient, project: Project) -> list[Container]:
    """The project's plain containers (not Swarm's task containers), broker first, then backend, then workers
    by number."""
    found = [
        c
        for c in client.containers.list(all=True, filters=project_filter(project), ignore_removed=True)
        if SWARM_TASK_LABEL not in c.labels
    ]
    order = {service: index for index, service in enumerate(SERVICES)}
    return sorted(found, key=lambda c: (order.get(service_of(c), len(order)), number_of(c)))


def service_of(container: Container) -> str:
    return container.labels.get(LABEL_SERVICE, "worker")


def number_of(container: Container) -> int:
    return int(container.labels.get(LABEL_NUMBER, "0"))


def queues_of(container: Container) -> tuple[str, ...] | None:
    """The queues a worker was started to consume; None for the image's default."""
    listed = container.labels.get(LABEL_QUEUES)
    return tuple(listed.split(",")) if listed else None


def hostname_of(container: Container) -> str:
    return container.attrs["Config"]["Hostname"]


def create(client: docker.DockerClient, project: Project, spec: ServiceSpec, network: str) -> Container:
    """Create (not start) a service's container on the network, reachable there by its key."""
    container = client.containers.create(
        name=project.container(spec.service, spec.number),
        image=spec.image,
        hostname=spec.hostname or spec.key,
        labels=spec.labels(project),
        environment=spec.environment,
        command=spec.command,
        ports={f"{inner}/tcp": outer for inner, outer in spec.ports.items()},
        volumes={name: {"bind": path, "mode": "rw"} for name, path in spec.volumes.items()},
        stop_signal=spec.stop_signal,
        network=network,
        networking_config={network: client.api.create_endpoint_config(aliases=[spec.key])},
        init=True,  # PID 1 forwards SIGTERM, so every service stops at once
        detach=True,
    )
    for path, content in spec.files.items():
        # unpacked at the root, so that the engine makes the directories the image lacks (/run/secrets)
        container.put_archive("/", _tar_of(path.lstrip("/"), content))
    return container


def _tar_of(path: str, content: bytes) -> bytes:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(path)
        member.size, member.mode = len(content), 0o644  # readable by the user the image switches to
        tar.addfile(member, io.BytesIO(content))
    return archive.getvalue()


def start_all(items: list[Container]) -> None:
    import docker

    def start(container: Container) -> None:
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise start_error(container, exc) from None
        container.reload()

    parallel(start, items)


def stop_and_remove(items: list[Container]) -> None:
    import docker

    def stop_and_remove_one(container: Container) -> None:
        try:
            if container.status == "running":
                container.stop(timeout=stop_timeout(service_of(container)))
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    parallel(stop_and_remove_one, items)


def network(client: docker.DockerClient, project: Project) -> tuple[Any, bool]:
    """The project's network, and whether it was made now."""
    found = [n for n in client.networks.list(filters=project_filter(project)) if n.name == project.network]
    if found:
        return found[0], False
    return client.networks.create(project.network, driver="bridge", labels=project.labels), True


def volume(
    client: docker.DockerClient, project: Project, service: str, labels: Callable[[], dict[str, str]] = dict
) -> tuple[Any, bool]:
    """A service's data volume (made with the `labels()` if missing), and whether it was made now; refuses a
    volume tcel did not make."""
    import docker

    name = project.volume(service)
    try:
        found = client.volumes.get(name)
    except docker.errors.NotFound:
        return client.volumes.create(name, labels={**project.labels, LABEL_SERVICE: service, **labels()}), True
    if (found.attrs.get("Labels") or {}).get(LABEL_PROJECT) != project.name:
        raise TcelError(
            f"volume {name} exists but was not made by tcel for project {project.name}",
            hint="remove or rename it, or choose another --project-name",
        )
    return found, False


def remove_networks(client: docker.DockerClient, project: Project) -> list[str]:
    found = client.networks.list(filters=project_filter(project))
    for item in found:
        item.remove()
    return [item.name for item in found]


def remove_volumes(client: docker.DockerClient, project: Project) -> list[str]:
    found = client.volumes.list(filters=project_filter(project))
    for item in found:
        item.remove(force=True)
    return [item.name for item in found]


def remove_unused_images(client: docker.DockerClient, image_ids: set[str]) -> None:
    """Old worker and Flower images go once no container uses them; the engine refuses while one does."""
    import docker

    for image_id in image_ids:
        try:
            if client.images.get(image_id).labels.get(LABEL_IMAGE) in (WORKER_IMAGE_KIND, FLOWER_IMAGE_KIND):
                client.images.remove(image_id)
        except docker.errors.APIError:
            pass  # still used by a container, or already gone


def binding(container: Container | None, port: int) -> tuple[str | None, int | None]:
    """The host address and port a container's port is published on, if it is."""
    bindings = container.attrs["HostConfig"].get("PortBindings") or {} if container is not None else {}
    for bound in bindings.get(f"{port}/tcp") or []:
        if bound.get("HostPort"):
            return bound.get("HostIp") or None, int(bound["HostPort"])
    return None, None


def ports(container: Container) -> list[str]:
    published = container.attrs["NetworkSettings"].get("Ports") or {}
    bindings = container.attrs["HostConfig"].get("PortBindings") or {}
    shown = published if container.status == "running" else bindings
    return [
        f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{inner}"
        for inner, items in sorted(shown.items())
        for b in items or []
    ]


def started_at(container: Container) -> datetime | None:
    raw = container.attrs["State"].get("StartedAt", "")
    if not raw or raw.startswith("0001"):
        return None
    return datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00")


def start_error(container: Container, exc: Exception) -> TcelError:
    text = str(getattr(exc, "explanation", None) or exc)
    if "port is already allocated" in text or "address already in use" in text:
        service = service_of(container)
        where = re.search(r"(\d+\.\d+\.\d+\.\d+:\d+)", text)
        return PortInUse(
            f"{where.group(1) if where else 'a port'} for the {service} is already in use",
            hint=f"choose another with --{service}-port or TCEL_{service.upper()}_PORT",
        )
    return TcelError(f"cannot start {container.name}: {text}", hint="see 'docker logs " + container.name + "'")


def parallel(action: Callable[[Any], None], items: list[Any]) -> None:
    """Run `action` on every item at once (the engine does the waiting); the first error is raised."""
    from concurrent.futures import ThreadPoolExecutor

    if len(items) <= 1:
        for item in items:
            action(item)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()


def stop_warm_and_remove(container: Container, grace: float) -> None:
    """Stop a worker with Celery's warm shutdown (SIGTERM: it takes no new task and finishes those it runs),
    wait up to `grace` seconds, then take the cold path `down` takes (its stop signal, then SIGKILL); remove it.
    With late acks, whatever it still runs by then goes back to the queue."""
    import docker
    import requests

    try:
        container.kill(signal=WORKER_WARM_STOP_SIGNAL)
        container.wait(timeout=max(grace, 0.01))
    except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
        pass  # still running after the grace
    except docker.errors.APIError:
        pass  # not running any more
    try:
        container.reload()
    except docker.errors.NotFound:
        return
    stop_and_remove([container])


def rename(container: Container, name: str) -> None:
    container.rename(name)
    container.reload()
