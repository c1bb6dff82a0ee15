"""Turning a stack ServiceSpec into a Swarm service (passwords as secrets owned by the image's user, dnsrr,
host-mode ports), and changing a running service's spec in place."""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from ...names import LABEL_SERVICE
from ...settings import Project
from ..containers.secret_files import owner_of
from ..specs import LOG_DRIVER, LOG_OPTIONS, ServiceSpec, secrets_in_files
from .docker_api import Service, environment_of, image_user

if TYPE_CHECKING:
    import docker
    from docker.models.secrets import Secret

    from ..containers.secret_files import Owner

# A worker's host name (its Celery node name) follows its replica slot, which Swarm keeps when it replaces a
# task: a rescheduled worker comes back under the same name, so no ghost workers pile up in `status`.
WORKER_HOSTNAME = "worker-{{.Task.Slot}}"


def secret(client: docker.DockerClient, project: Project, service: str, path: str, content: bytes) -> Secret:
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
    secrets = []
    if spec.files:  # owned by the image's user and readable by it only (secret_owner); a TLS key by its server's
        who = secret_owner(client, spec.image)
        secrets = [
            types.SecretReference(found.id, found.name, path, str(owned.uid), str(owned.gid), owned.mode)
            for path, content in spec.files.items()
            for found in [secret(client, project, spec.service, path, content)]
            for owned in [owner_of(path, who, spec.owners)]
        ]
    ports = {outer: (inner, "tcp", "host") for inner, (_, outer) in spec.ports.items()}
    labels = spec.labels(project)
    created = client.services.create(
        spec.image,
        args=spec.command,  # the image's entrypoint runs it, as on plain containers (`command` would replace it)
        name=project.container(spec.service),
        hostname=WORKER_HOSTNAME if spec.service == "worker" else (spec.hostname or spec.key),
        labels=labels,
        container_labels=labels,
        env=[f"{key}={value}" for key, value in spec.environment.items()],
        mounts=[_mount(project, name, path) for name, path in spec.volumes.items()],
        groups=list(spec.groups) or None,
        secrets=secrets,
        stop_signal=spec.stop_signal,
        stop_grace_period=spec.stop_timeout * 10**9,
        networks=[types.NetworkAttachmentConfig(network_name, aliases=[spec.service])],
        endpoint_spec=types.EndpointSpec(mode="dnsrr", ports=ports or None),
        mode=types.ServiceMode(mode, replicas=replicas if mode == "replicated" else None),
        constraints=constraints,
        preferences=[types.PlacementPreference("spread", "node.id")],
        init=True,
        log_driver=LOG_DRIVER,
        log_driver_options=LOG_OPTIONS,
        healthcheck=_healthcheck(spec.health) if spec.health else None,
    )
    return Service(created)


def _mount(project: Project, source: str, target: str) -> Any:
    """A named volume, or a path of the node's own (the autoscaler's Docker socket) bound in."""
    import docker.types as types

    if source.startswith("/"):
        return types.Mount(target, source, type="bind")
    return types.Mount(target, source, type="volume", labels=project.labels)


def _healthcheck(command: tuple[str, ...]) -> Any:
    """Swarm keeps a task that has a healthcheck in `starting`, out of its service's DNS, until the check
    passes, so `running` means serving. Every 2 s: Docker 20.10 has no faster interval for the start only."""
    import docker.types as types

    second = 10**9
    return types.Healthcheck(
        test=["CMD", *command], interval=2 * second, timeout=2 * second, retries=3, start_period=60 * second
    )


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
    spec = service.spec()
    container = spec["TaskTemplate"]["ContainerSpec"]
    if image is not None:
        container["Image"] = image
    if replicas is not None:
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    if environment:
        container["Env"] = _with_environment(container.get("Env") or [], environment)
    if placement is not None:
        spec["TaskTemplate"]["Placement"] = {**spec["TaskTemplate"].get("Placement", {}), **placement}
    if force:
        spec["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0) + 1
    if labels:
        spec["Labels"] = {**(spec.get("Labels") or {}), **labels}
        container["Labels"] = {**(container.get("Labels") or {}), **labels}
    service.raw.client.api.update_service(
        service.id,
        service.raw.version,
        task_template=spec["TaskTemplate"],
        name=spec["Name"],
        labels=spec.get("Labels"),
        mode=spec["Mode"],
        update_config=spec.get("UpdateConfig"),
        rollback_config=spec.get("RollbackConfig"),
        networks=spec.get("Networks"),
        endpoint_spec=spec.get("EndpointSpec"),
    )
    service.raw.reload()


def _with_environment(env: list[str], changes: dict[str, str | None]) -> list[str]:
    """A `KEY=VALUE` list with `changes` made (None drops a key)."""
    values = environment_of(env)
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return [f"{key}={value}" for key, value in values.items()]


def secret_owner(client: docker.DockerClient, image: str) -> Owner:
    """Who gets a service's secret files: the image's user, as the image's own /etc/passwd resolves it (read from
    a container made from it and removed, never started), mode 0400; root with 0444 for an image without a user
    (the broker's and backend's, whose entry points drop to a user of their own) or one this engine cannot read."""
    import docker

    from ..containers.secret_files import Owner, owner

    everyone = Owner(0, 0, 0o444)
    try:
        configured = image_user(client, image)
        if configured.partition(":")[0] in ("", "root", "0"):
            return everyone
        container = client.containers.create(image, command=["true"], entrypoint=[])
    except docker.errors.DockerException:
        return everyone
    try:
        found = owner(container, configured)
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
    return found if found.mode != 0o644 else everyone
