"""The Swarm engine's Docker calls, and the typed views of what Docker returns (service, task, node, config): the
only place of this engine that reads docker-py's raw `attrs`. Swarm membership, nodes, secrets, configs, overlay
networks, services, images."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...errors import NotRunning, UsageError
from ...names import LABEL_PROJECT, LABEL_SERVICE
from ...settings import Project
from ..docker_client import docker_time, project_filter

if TYPE_CHECKING:
    import docker
    from docker.models.networks import Network
    from docker.models.nodes import Node as DockerNode
    from docker.models.services import Service as DockerService

REGISTRY_PORT = 5000  # inside the registry's container
SERVICE_ID_LABEL = "com.docker.swarm.service.id"  # on each task container: the service it runs for


@dataclass(frozen=True)
class Task:
    """One task of a service, as tcel reads it."""

    id: str
    slot: int | None
    node_id: str
    state: str  # what it is doing: running, failed, rejected...
    desired_state: str
    timestamp: datetime | None  # when it entered `state`
    error: str
    image: str  # as its spec names it
    env: tuple[str, ...]

    @property
    def started_at(self) -> datetime | None:
        return self.timestamp if self.state == "running" else None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Task:
        container = raw["Spec"].get("ContainerSpec") or {}
        return cls(
            id=raw["ID"],
            slot=raw.get("Slot"),
            node_id=raw.get("NodeID", ""),
            state=raw["Status"]["State"],
            desired_state=raw.get("DesiredState", ""),
            timestamp=docker_time(raw["Status"].get("Timestamp", "")),
            error=raw["Status"].get("Err") or raw["Status"]["State"],
            image=container.get("Image", ""),
            env=tuple(container.get("Env") or ()),
        )


@dataclass(eq=False)
class Service:
    """One of the stack's Swarm services as tcel reads it; `raw` is docker-py's object, for the calls below."""

    raw: DockerService

    @property
    def id(self) -> str:
        return str(self.raw.id)

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def kind(self) -> str:
        """What it is to the stack: broker, backend, worker, flower, registry, registry-mirror."""
        return str(self.raw.attrs["Spec"]["Labels"].get(LABEL_SERVICE, "worker"))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.raw.attrs["Spec"].get("Labels") or {})

    @property
    def _container(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.raw.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        return spec

    @property
    def spec_image(self) -> str:
        """The image as its spec names it (Swarm may add the digest it resolved: `...@sha256:...`)."""
        return str(self._container["Image"])

    @property
    def image(self) -> str:
        return self.spec_image.split("@")[0]

    @property
    def env(self) -> tuple[str, ...]:
        return tuple(self._container.get("Env") or ())

    @property
    def environment(self) -> dict[str, str]:
        """Its container environment (its spec's `KEY=VALUE` list) as a dict."""
        return environment_of(self.env)

    @property
    def replicated(self) -> bool:
        return "Replicated" in self.raw.attrs["Spec"]["Mode"]

    @property
    def replicas(self) -> int:
        return int(self.raw.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0))

    @property
    def published(self) -> list[tuple[int, int, str]]:
        """(published, target, protocol) of each port it publishes."""
        ports = self.raw.attrs["Spec"].get("EndpointSpec", {}).get("Ports") or []
        return [(int(p["PublishedPort"]), int(p["TargetPort"]), str(p.get("Protocol", "tcp"))) for p in ports]

    @property
    def published_port(self) -> int | None:
        return self.published[0][0] if self.published else None

    def spec(self) -> dict[str, Any]:
        """A copy of its current spec, to change and send back (service_spec.update)."""
        import copy

        self.raw.reload()
        spec: dict[str, Any] = copy.deepcopy(self.raw.attrs["Spec"])
        return spec

    def runs_spec(self, task: Task) -> bool:
        """Whether `task` was made from the service's current image and settings (not one a rolling update
        replaces)."""
        return task.image == self.spec_image and task.env == self.env

    def tasks(self, running: bool = False) -> list[Task]:
        """Its tasks; with `running`, those Swarm wants running."""
        found = self.raw.tasks(filters={"desired-state": "running"}) if running else self.raw.tasks()
        return [Task.of(t) for t in found]

    def running_tasks(self) -> list[Task]:
        return [t for t in self.tasks(running=True) if t.state == "running"]

    def log_chunks(self, tail: int | None, follow: bool) -> Iterator[bytes]:
        chunks: Iterator[bytes] = self.raw.logs(
            stdout=True,
            stderr=True,
            timestamps=True,
            details=True,
            follow=follow,
            tail=tail if tail is not None else "all",
        )
        return chunks


@dataclass(eq=False)
class Node:
    """A node of the swarm as tcel reads it."""

    raw: DockerNode

    @property
    def id(self) -> str:
        return str(self.raw.id)

    @property
    def hostname(self) -> str:
        return str(self.raw.attrs["Description"]["Hostname"])

    @property
    def address(self) -> str:
        return str(self.raw.attrs["Status"].get("Addr") or "127.0.0.1")

    @property
    def takes_tasks(self) -> bool:
        return bool(self.raw.attrs["Status"]["State"] == "ready" and self.raw.attrs["Spec"]["Availability"] == "active")


@dataclass(frozen=True)
class Config:
    """A Swarm config as tcel reads it (its data apart: config_text)."""

    id: str
    name: str
    created: datetime | None


def environment_of(env: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A `KEY=VALUE` list as a dict."""
    return dict(item.partition("=")[::2] for item in env)


def init_swarm(client: docker.DockerClient) -> None:
    """A single-node swarm on this engine, listening on loopback only (as tcel publishes on 127.0.0.1 unless
    asked): a swarm that other machines join needs `docker swarm init --advertise-addr ADDRESS` instead."""
    client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")


def manager_id(client: docker.DockerClient) -> str:
    """The node id of this engine (a swarm manager)."""
    return str(client.info()["Swarm"]["NodeID"])


def nodes(client: docker.DockerClient) -> list[Node]:
    return [Node(n) for n in client.nodes.list()]


def node_of(client: docker.DockerClient, name: str | None) -> Node:
    """The node called `name` (host name or id), or this manager."""
    if name is None:
        return Node(client.nodes.get(manager_id(client)))
    for node in nodes(client):
        if name in (node.id, node.hostname):
            return node
    raise UsageError(f"no swarm node called {name!r}", hint="see 'docker node ls'")


def data_label(project: Project) -> str:
    return f"io.tcel.data.{project.name}"


def label_data_node(client: docker.DockerClient, project: Project, node: Node) -> None:
    """Put the project's data label on `node` alone: the broker and backend follow it (their volumes are there)."""
    key = data_label(project)
    for other in client.nodes.list(filters={"node.label": key}):
        if other.id != node.id:
            _set_label(other, key, None)
    _set_label(node.raw, key, "true")


def unlabel_data_node(client: docker.DockerClient, project: Project) -> None:
    for node in client.nodes.list(filters={"node.label": data_label(project)}):
        _set_label(node, data_label(project), None)


def _set_label(node: DockerNode, key: str, value: str | None) -> None:
    node.reload()
    spec = node.attrs["Spec"]
    labels = dict(spec.get("Labels") or {})
    if labels.get(key) == value:
        return
    if value is None:
        labels.pop(key, None)
    else:
        labels[key] = value
    node.update({**spec, "Labels": labels})


def node_names(client: docker.DockerClient) -> dict[str, str]:
    return {n.id: n.hostname for n in nodes(client)}


def network(client: docker.DockerClient, project: Project) -> Network:
    """The project's overlay network (attachable, so a plain container can join it to debug)."""
    found = [n for n in client.networks.list(filters=project_filter(project)) if n.name == project.network]
    if found:
        return found[0]
    return client.networks.create(project.network, driver="overlay", attachable=True, labels=project.labels)


def services(client: docker.DockerClient, project: Project) -> list[Service]:
    return [Service(s) for s in client.services.list(filters=project_filter(project))]


def is_manager(client: docker.DockerClient) -> bool:
    """Whether this engine is an active swarm manager (only a manager can list services)."""
    swarm = client.info().get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def service_names(client: docker.DockerClient, project: Project) -> list[str]:
    """The names of the project's services, when this engine is a swarm manager (else it can list none)."""
    return sorted(s.name for s in services(client, project)) if is_manager(client) else []


def remove_services(client: docker.DockerClient, project: Project, found: list[Service], timeout: float = 60) -> None:
    """Remove services and wait until their tasks are gone from the swarm and their containers from this node
    (the network, secrets and volumes they used are free only then); other nodes remove theirs as they go."""
    import docker

    for service in found:
        with contextlib.suppress(docker.errors.NotFound):
            service.raw.remove()
    ids = {s.id for s in found}
    deadline = time.monotonic() + timeout

    def containers_left() -> list[Any]:
        return [
            c
            for c in client.containers.list(all=True, filters=project_filter(project), ignore_removed=True)
            if c.labels.get(SERVICE_ID_LABEL) in ids
        ]

    # the tasks leave the swarm's list before their containers leave this node (and its volumes are free)
    while ids and ([t for t in client.api.tasks() if t["ServiceID"] in ids] or containers_left()):
        if time.monotonic() > deadline:
            raise NotRunning(
                f"tasks of {', '.join(sorted(s.name for s in found))} still there after {timeout:.0f}s",
                hint="see 'docker service ps'; run 'tcel down' again",
            )
        time.sleep(0.3)


def remove_secrets(client: docker.DockerClient, project: Project) -> None:
    for secret in client.secrets.list(filters=project_filter(project)):
        secret.remove()


def image_references(client: docker.DockerClient, name: str) -> list[str]:
    """The tags and digest references (`NAME@sha256:...`) of this engine's images called `name`."""
    return [
        reference
        for image in client.images.list(name=name)
        for reference in [*image.tags, *(image.attrs.get("RepoDigests") or [])]
    ]


def image_user(client: docker.DockerClient, image: str) -> str:
    """The user an image of this engine names in its configuration ("" for none)."""
    return str(client.images.get(image).attrs["Config"].get("User") or "")


def config_copies(client: docker.DockerClient, project: Project, role: str) -> list[Config]:
    """The project's Swarm configs of one role (their LABEL_SERVICE)."""
    found = client.configs.list(filters={"label": [f"{LABEL_PROJECT}={project.name}", f"{LABEL_SERVICE}={role}"]})
    return [Config(str(c.id), str(c.name), docker_time(c.attrs.get("CreatedAt", ""))) for c in found]


def config_text(client: docker.DockerClient, config: Config) -> str:
    """What a config holds (Swarm gives a config's data back, never a secret's)."""
    import base64

    return base64.b64decode(client.configs.get(config.id).attrs["Spec"].get("Data") or "").decode()
