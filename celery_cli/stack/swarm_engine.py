"""Low-level Docker Swarm access for the swarm engine, as engine.py is for plain containers: swarm membership,
nodes, secrets, overlay networks, and turning a ServiceSpec into a Swarm service."""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import NotRunning, TcelError, UsageError
from ..names import LABEL_SERVICE
from ..settings import Project
from .specs import ServiceSpec, secrets_in_files

if TYPE_CHECKING:
    import docker
    from docker.models.services import Service

# A worker's host name (its Celery node name) follows its replica slot, which Swarm keeps when it replaces a
# task: a rescheduled worker comes back under the same name, so no ghost workers pile up in `status`.
WORKER_HOSTNAME = "worker-{{.Task.Slot}}"
REGISTRY_PORT = 5000  # inside the registry's container
SERVICE_ID_LABEL = "com.docker.swarm.service.id"  # on each task container: the service it runs for


def membership(info: dict[str, Any], init: bool) -> bool:
    """Whether tcel must initialise a swarm first (only with `init`), from `docker info`'s Swarm part; refuses
    an engine that is a worker of a swarm, or in no swarm without `init`."""
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "inactive")
    if state == "active" and swarm.get("ControlAvailable"):
        return False
    if state == "active":
        raise UsageError(
            "this Docker engine is a worker of a swarm, not a manager",
            hint="run tcel against a manager (DOCKER_HOST), or promote this node with 'docker node promote'",
        )
    if state in ("pending", "locked", "error"):
        raise TcelError(f"this Docker engine's swarm is {state}", hint="see 'docker info'")
    if not init:
        raise UsageError(
            "this Docker engine is not a swarm manager",
            hint="run 'tcel up --swarm --init' to make it a single-node swarm, or 'docker swarm init' yourself",
        )
    return True


def init_swarm(client: docker.DockerClient) -> None:
    """A single-node swarm on this engine, listening on loopback only (as tcel publishes on 127.0.0.1 unless
    asked): a swarm that other machines join needs `docker swarm init --advertise-addr ADDRESS` instead."""
    client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")


def node_of(client: docker.DockerClient, name: str | None) -> Any:
    """The node called `name` (host name or id), or this manager."""
    if name is None:
        return client.nodes.get(client.info()["Swarm"]["NodeID"])
    for node in client.nodes.list():
        if name in (node.id, node.attrs["Description"]["Hostname"]):
            return node
    raise UsageError(f"no swarm node called {name!r}", hint="see 'docker node ls'")


def data_label(project: Project) -> str:
    return f"io.tcel.data.{project.name}"


def label_data_node(client: docker.DockerClient, project: Project, node: Any) -> None:
    """Put the project's data label on `node` alone: the broker and backend follow it (their volumes are there)."""
    key = data_label(project)
    for other in client.nodes.list(filters={"node.label": key}):
        if other.id != node.id:
            _set_label(other, key, None)
    _set_label(node, key, "true")


def unlabel_data_node(client: docker.DockerClient, project: Project) -> None:
    for node in client.nodes.list(filters={"node.label": data_label(project)}):
        _set_label(node, data_label(project), None)


def _set_label(node: Any, key: str, value: str | None) -> None:
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
    return {n.id: n.attrs["Description"]["Hostname"] for n in client.nodes.list()}


def node_address(node: Any) -> str:
    return node.attrs["Status"].get("Addr") or "127.0.0.1"


def network(client: docker.DockerClient, project: Project) -> Any:
    """The project's overlay network (attachable, so a plain container can join it to debug)."""
    from .engine import project_filter

    found = [n for n in client.networks.list(filters=project_filter(project)) if n.name == project.network]
    if found:
        return found[0]
    return client.networks.create(project.network, driver="overlay", attachable=True, labels=project.labels)


def services(client: docker.DockerClient, project: Project) -> list[Service]:
    from .engine import project_filter

    return client.services.list(filters=project_filter(project))


def is_manager(client: docker.DockerClient) -> bool:
    """Whether this engine is an active swarm manager (only a manager can list services)."""
    swarm = client.info().get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def service_names(client: docker.DockerClient, project: Project) -> list[str]:
    """The names of the project's services, when this engine is a swarm manager (else it can list none)."""
    return sorted(s.name for s in services(client, project)) if is_manager(client) else []


def container_environment(container_spec: dict[str, Any]) -> dict[str, str]:
    """A service's container environment (its spec's `KEY=VALUE` list) as a dict."""
    return dict(item.partition("=")[::2] for item in container_spec.get("Env") or [])


def service_of(service: Service) -> str:
    return service.attrs["Spec"]["Labels"].get(LABEL_SERVICE, "worker")


def secret(client: docker.DockerClient, project: Project, service: str, path: str, content: bytes) -> Any:
    """A Docker secret holding `content`; named after it (secrets cannot change), reused when it exists."""
    digest = hashlib.sha256(path.encode() + b"\0" + content).hexdigest()[:12]
    name = f"tcel-{project.name}-{service}-{digest}"
    found = [s for s in client.secrets.list(filters={"name": name}) if s.name == name]
    if found:
        return found[0]
    return client.secrets.create(name=name, data=content, labels={**project.labels, LABEL_SERVICE: service})


def create_service(
    client: docker.DockerClient,
    project: Project,
    spec: ServiceSpec,
    network_name: str,
    replicas: int,
    constraints: list[str],
    mode: str = "replicated",
) -> Service:
    """A Swarm service from a stack spec: passwords as secrets (files), dnsrr (no IPVS needed, no idle AMQP
    resets), ports published in host mode on the node its task runs on, reachable by the spec's key."""
    import docker.types as types

    spec = secrets_in_files(spec)
    secrets = [
        types.SecretReference(found.id, found.name, filename=path, mode=0o444)
        for path, content in spec.files.items()
        for found in [secret(client, project, spec.service, path, content)]
    ]
    ports = {outer: (inner, "tcp", "host") for inner, (_, outer) in spec.ports.items()}
    labels = spec.labels(project)
    return client.services.create(
        spec.image,
        spec.command,
        name=project.container(spec.service),
        hostname=WORKER_HOSTNAME if spec.service == "worker" else (spec.hostname or spec.key),
        labels=labels,
        container_labels=labels,
        env=[f"{key}={value}" for key, value in spec.environment.items()],
        mounts=[types.Mount(path, name, type="volume", labels=project.labels) for name, path in spec.volumes.items()],
        secrets=secrets,
        stop_signal=spec.stop_signal,
        stop_grace_period=spec.stop_timeout * 10**9,
        networks=[types.NetworkAttachmentConfig(network_name, aliases=[spec.service])],
        endpoint_spec=types.EndpointSpec(mode="dnsrr", ports=ports or None),
        mode=types.ServiceMode(mode, replicas=replicas if mode == "replicated" else None),
        constraints=constraints,
        preferences=[types.PlacementPreference("spread", "node.id")],
        init=True,
        healthcheck=_healthcheck(spec.health) if spec.health else None,
    )


def _healthcheck(command: tuple[str, ...]) -> Any:
    """Swarm keeps a task that has a healthcheck in `starting`, out of its service's DNS, until the check
    passes, so `running` means serving. Every 2 s: Docker 20.10 has no faster interval for the start only."""
    import docker.types as types

    second = 10**9
    return types.Healthcheck(
        test=["CMD", *command], interval=2 * second, timeout=2 * second, retries=3, start_period=60 * second
    )


def untag_pushed(client: docker.DockerClient, registry: str) -> None:
    """Drop this engine's tags of worker and Flower images pushed to a registry that is going away (the images
    stay while another tag or a container uses them)."""
    pushed = [*client.images.list(name=f"{registry}/tcel-worker"), *client.images.list(name=f"{registry}/tcel-flower")]
    for image in pushed:
        for tag in image.tags:
            if tag.startswith(f"{registry}/"):
                untag(client, tag)


def untag(client: docker.DockerClient, tag: str) -> None:
    """Drop one tag of this engine's (the image stays while another tag or a container uses it)."""
    import docker

    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(tag, noprune=True)


def update(
    service: Service,
    image: str | None = None,
    replicas: int | None = None,
    environment: dict[str, str | None] | None = None,
    labels: dict[str, str] | None = None,
    placement: dict[str, Any] | None = None,
    force: bool = False,
) -> None:
    """Change only the image, replica count, some environment variables (None drops one), labels (the
    service's and its containers') or placement settings (`Constraints`, `MaxReplicas` per node) in the
    service's current spec (docker-py's Service.update rebuilds the spec, which Swarm takes for a change and
    restarts every task). `force` replaces every task even so (Swarm leaves a task that still satisfies new
    placement settings where it is)."""
    import copy

    service.reload()
    spec = copy.deepcopy(service.attrs["Spec"])
    container = spec["TaskTemplate"]["ContainerSpec"]
    if image is not None:
        container["Image"] = image
    if replicas is not None:
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    if environment:
        env = container_environment(container)
        for key, value in environment.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        container["Env"] = [f"{key}={value}" for key, value in env.items()]
    if placement is not None:
        spec["TaskTemplate"]["Placement"] = {**spec["TaskTemplate"].get("Placement", {}), **placement}
    if force:
        spec["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0) + 1
    if labels:
        spec["Labels"] = {**(spec.get("Labels") or {}), **labels}
        container["Labels"] = {**(container.get("Labels") or {}), **labels}
    service.client.api.update_service(
        service.id,
        service.version,
        task_template=spec["TaskTemplate"],
        name=spec["Name"],
        labels=spec.get("Labels"),
        mode=spec["Mode"],
        update_config=spec.get("UpdateConfig"),
        rollback_config=spec.get("RollbackConfig"),
        networks=spec.get("Networks"),
        endpoint_spec=spec.get("EndpointSpec"),
    )
    service.reload()


def running_tasks(service: Service) -> list[dict[str, Any]]:
    return [t for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] == "running"]


def task_started(task: dict[str, Any]) -> datetime | None:
    if task["Status"]["State"] != "running":
        return None
    raw = task["Status"].get("Timestamp", "")
    return datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00") if raw else None


def failures_since(service: Service, since: float) -> list[tuple[str, str]]:
    """The node id and error of each of the service's tasks that failed or were rejected since `since` (epoch
    seconds)."""
    errors = []
    for task in service.tasks():
        if task["Status"]["State"] in ("failed", "rejected"):
            when = datetime.fromisoformat(task["Status"]["Timestamp"][:26].rstrip("Z") + "+00:00")
            if when.timestamp() >= since:
                errors.append((task.get("NodeID", ""), task["Status"].get("Err") or task["Status"]["State"]))
    return errors


def remove_services(client: docker.DockerClient, project: Project, found: list[Service], timeout: float = 60) -> None:
    """Remove services and wait until their tasks are gone from the swarm and their containers from this node
    (the network, secrets and volumes they used are free only then); other nodes remove theirs as they go."""
    import docker

    from .engine import project_filter

    for service in found:
        with contextlib.suppress(docker.errors.NotFound):
            service.remove()
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
