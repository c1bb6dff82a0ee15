"""The plain-container engine's Docker calls, and the typed view of a container: the only place of this engine
that reads docker-py's raw `attrs`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...errors import TcelError
from ...names import (
    FLOWER_IMAGE_KIND,
    LABEL_CHILD_LIMITS,
    LABEL_IMAGE,
    LABEL_NUMBER,
    LABEL_PROJECT,
    LABEL_QUEUES,
    LABEL_SERVICE,
    METRICS_IMAGE_KIND,
    SERVICES,
    WORKER_IMAGE_KIND,
)
from ...settings import Project
from ..docker_client import docker_time, parallel, project_filter
from ..ports import port_in_use
from ..specs import LOG_DRIVER, LOG_OPTIONS, RESTART_POLICY, WORKER_WARM_STOP_SIGNAL, ServiceSpec, stop_timeout
from . import secret_files

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container as DockerContainer
    from docker.models.networks import Network

# Swarm puts this label on every task's container: those carry the project's labels too, but belong to its
# services (the swarm engine), never to the plain-container stack
SWARM_TASK_LABEL = "com.docker.swarm.task.id"


@dataclass(eq=False)
class Container:
    """One of the stack's containers as tcel reads it; `raw` is docker-py's object, for the calls below."""

    raw: DockerContainer

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def short_id(self) -> str:
        return str(self.raw.short_id)

    @property
    def status(self) -> str:
        return str(self.raw.status)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.raw.labels)

    @property
    def service(self) -> str:
        return self.labels.get(LABEL_SERVICE, "worker")

    @property
    def number(self) -> int:
        return int(self.labels.get(LABEL_NUMBER, "0"))

    @property
    def queues(self) -> tuple[str, ...] | None:
        """The queues a worker was started to consume; None for the image's default."""
        listed = self.labels.get(LABEL_QUEUES)
        return tuple(listed.split(",")) if listed else None

    @property
    def child_limits(self) -> str:
        """A worker's pool limits as specs.child_limits writes them ("0,0": none, also for a worker made before)."""
        return self.labels.get(LABEL_CHILD_LIMITS) or "0,0"

    @property
    def hostname(self) -> str:
        return str(self.raw.attrs["Config"]["Hostname"])

    @property
    def image(self) -> str:
        """The image as the container was made from it (its name)."""
        return str(self.raw.attrs["Config"]["Image"])

    @property
    def environment(self) -> dict[str, str]:
        """Its environment as made (the image's and its own): what a copy of it needs."""
        return dict(item.partition("=")[::2] for item in self.raw.attrs["Config"].get("Env") or [])

    @property
    def image_id(self) -> str:
        return str(self.raw.attrs["Image"])

    @property
    def exit_code(self) -> int | None:
        code = self.raw.attrs["State"].get("ExitCode")
        return None if code is None else int(code)

    @property
    def restarts(self) -> int:
        """How often the engine restarted it by its restart policy since it was created."""
        return int(self.raw.attrs.get("RestartCount") or 0)

    @property
    def started_at(self) -> datetime | None:
        return docker_time(self.raw.attrs["State"].get("StartedAt", ""))

    @property
    def ports(self) -> list[str]:
        """Its published ports as `address:port->inner/tcp`."""
        published = self.raw.attrs["NetworkSettings"].get("Ports") or {}
        bindings = self.raw.attrs["HostConfig"].get("PortBindings") or {}
        shown = published if self.status == "running" else bindings
        return [
            f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{inner}"
            for inner, items in sorted(shown.items())
            for b in items or []
        ]

    def binding(self, port: int) -> tuple[str | None, int | None]:
        """The host address and port its `port` is published on, if it is."""
        for bound in (self.raw.attrs["HostConfig"].get("PortBindings") or {}).get(f"{port}/tcp") or []:
            if bound.get("HostPort"):
                return bound.get("HostIp") or None, int(bound["HostPort"])
        return None, None

    def reload(self) -> None:
        self.raw.reload()

    def log_text(self, tail: int | str = "all", since: float | None = None, timestamps: bool = False) -> str:
        return bytes(self.raw.logs(tail=tail, since=since, timestamps=timestamps)).decode(errors="replace")

    def log_stream(self, tail: int | str = "all") -> Iterator[bytes]:
        stream: Iterator[bytes] = self.raw.logs(stream=True, follow=True, tail=tail)
        return stream


def binding(container: Container | None, port: int) -> tuple[str | None, int | None]:
    """The host address and port a container's `port` is published on, if it is (None: no container)."""
    return container.binding(port) if container is not None else (None, None)


def containers(client: docker.DockerClient, project: Project) -> list[Container]:
    """The project's plain containers (not Swarm's task containers), broker first, then backend, then workers
    by number."""
    found = [
        Container(c)
        for c in client.containers.list(all=True, filters=project_filter(project), ignore_removed=True)
        if SWARM_TASK_LABEL not in c.labels
    ]
    order = {service: index for index, service in enumerate(SERVICES)}
    return sorted(found, key=lambda c: (order.get(c.service, len(order)), c.number))


def create(client: docker.DockerClient, project: Project, spec: ServiceSpec, network: str) -> Container:
    """Create (not start) a service's container on the network, reachable there by its key."""
    from docker.types import LogConfig

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
        group_add=list(spec.groups) or None,
        network=network,
        networking_config={network: client.api.create_endpoint_config(aliases=[spec.key])},
        init=True,  # PID 1 forwards SIGTERM, so every service stops at once
        restart_policy={"Name": RESTART_POLICY},
        log_config=LogConfig(type=LOG_DRIVER, config=LOG_OPTIONS),
        detach=True,
    )
    who = secret_files.owner(container, container.attrs["Config"].get("User") or "")
    for path, content in spec.files.items():
        # unpacked at the root, so that the engine makes the directories the image lacks (/run/secrets); owned by
        # the image's user, readable by it only (a TLS key: by its server's user alone)
        container.put_archive(
            "/", secret_files.tar_of(path.lstrip("/"), content, secret_files.owner_of(path, who, spec.owners))
        )
    return Container(container)


def start_all(items: list[Container]) -> None:
    import docker

    def start(container: Container) -> None:
        try:
            container.raw.start()
        except docker.errors.APIError as exc:
            raise start_error(container, exc) from None
        container.reload()

    parallel(start, items)


def stop_and_remove(items: list[Container]) -> None:
    import docker

    def stop_and_remove_one(container: Container) -> None:
        try:
            if container.status == "running":
                container.raw.stop(timeout=stop_timeout(container.service))
            container.raw.remove(force=True)
        except docker.errors.NotFound:
            pass

    parallel(stop_and_remove_one, items)


def stop(items: list[Container]) -> None:
    """`docker stop`: the engine marks them stopped by hand, so their restart policy leaves them down (even one
    that had stopped by itself and was about to be restarted)."""
    import docker

    def stop_one(container: Container) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            container.raw.stop(timeout=stop_timeout(container.service))

    parallel(stop_one, items)


def remove(container: Container) -> None:
    """Remove a container that `up` made and never got to use (as it is: created, or started)."""
    container.raw.remove(force=True)


def network(client: docker.DockerClient, project: Project) -> tuple[Network, bool]:
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


def volume_labels(client: docker.DockerClient, name: str) -> dict[str, str] | None:
    """The labels of the volume `name`; None when there is no such volume."""
    import docker

    try:
        return dict(client.volumes.get(name).attrs.get("Labels") or {})
    except docker.errors.NotFound:
        return None


def image_environment(client: docker.DockerClient, image: str) -> dict[str, str]:
    """The environment an image sets (its `ENV` lines)."""
    env = client.images.get(image).attrs.get("Config", {}).get("Env") or []
    return dict(item.partition("=")[::2] for item in env)


def images_created(client: docker.DockerClient, images: Iterable[str]) -> dict[str, datetime | None]:
    """When each image (by id or name) was made, as its `Created` says; None for one the engine does not have."""
    import docker

    created: dict[str, datetime | None] = {}
    for image in set(images):
        try:
            created[image] = docker_time(str(client.images.get(image).attrs.get("Created") or ""))
        except docker.errors.ImageNotFound:
            created[image] = None
    return created


def image_id(client: docker.DockerClient, image: str) -> str:
    return str(client.images.get(image).id)


def remove_unused_images(client: docker.DockerClient, image_ids: set[str]) -> None:
    """Old worker, Flower and exporter images go once no container uses them; the engine refuses while one does."""
    import docker

    for image_id in image_ids:
        try:
            kind = client.images.get(image_id).labels.get(LABEL_IMAGE)
            if kind in (WORKER_IMAGE_KIND, FLOWER_IMAGE_KIND, METRICS_IMAGE_KIND):
                client.images.remove(image_id)
        except docker.errors.APIError:
            pass  # still used by a container, or already gone


def start_error(container: Container, exc: Exception) -> TcelError:
    text = str(getattr(exc, "explanation", None) or exc)
    if "port is already allocated" in text or "address already in use" in text:
        where = re.search(r"(\d+\.\d+\.\d+\.\d+:\d+)", text)
        return port_in_use(container.service, where.group(1) if where else "a port")
    return TcelError(f"cannot start {container.name}: {text}", hint="see 'docker logs " + container.name + "'")


def stop_warm_and_remove(container: Container, grace: float) -> None:
    """Stop a worker with Celery's warm shutdown (SIGTERM: it takes no new task and finishes those it runs),
    wait up to `grace` seconds, then take the cold path `down` takes (its stop signal, then SIGKILL); remove it.
    With late acks, whatever it still runs by then goes back to the queue."""
    import docker
    import requests

    try:
        container.raw.update(restart_policy={"Name": "no"})  # its restart policy would start it again at once
        container.raw.kill(signal=WORKER_WARM_STOP_SIGNAL)
        container.raw.wait(timeout=max(grace, 0.01))
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
    container.raw.rename(name)
    container.reload()
