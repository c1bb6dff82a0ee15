"""Planning and applying `tcel up` on plain containers: what to pull, check, build, create, start and
remove, in that order; whatever this run made is removed again if a later step fails."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from .. import credentials as stored
from ..credentials import Credentials
from ..errors import NotRunning, PortInUse
from ..names import BACKEND_PORT, BROKER_PORT
from ..output import Progress
from ..settings import Project
from . import engine, specs
from .base import UpOptions, UpReport
from .images import build_worker_image, ensure_pulled, image_exists, worker_image_name
from .specs import ServiceSpec

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

Existing = dict[str, "Container"]  # the project's containers by name


@dataclass
class UpPlan:
    """What `up` is to reach: every container the stack should have, and what that takes."""

    credentials: Credentials
    services: list[ServiceSpec]
    worker_image: str
    worker_queues: tuple[str, ...] | None
    python_image: str
    build: bool
    extra_workers: list[Container]  # numbered above an asked worker count


def plan(client: docker.DockerClient, project: Project, options: UpOptions, existing: Existing) -> UpPlan:
    """Decide from the options and what exists; nothing is changed yet."""
    # a running stack keeps its address and ports, whatever the options say now
    broker_ip, broker_port = engine.binding(existing.get(project.container("broker")), BROKER_PORT)
    _, backend_port = engine.binding(existing.get(project.container("backend")), BACKEND_PORT)
    access = (stored.load(project) or stored.generate()).with_ports(
        broker_ip or options.bind, broker_port or options.broker_port, backend_port or options.backend_port
    )
    if options.workers_only:
        _require_running(project, existing, ("broker", "backend"))
    workers = [c for c in existing.values() if engine.service_of(c) == "worker"]
    count = options.workers or len(workers) or 1
    if options.queues is None and workers:  # workers keep their queues unless told otherwise
        options = replace(options, queues=engine.queues_of(workers[0]))
    worker_image = worker_image_name(project, options.python_image)
    return UpPlan(
        credentials=access,
        services=[
            specs.broker(project, options, access),
            specs.backend(project, options, access),
            *(specs.worker(n, options, access, worker_image) for n in range(1, count + 1)),
        ],
        worker_image=worker_image,
        worker_queues=options.queues,
        python_image=options.python_image,
        build=options.build or not image_exists(client, worker_image),
        extra_workers=[c for c in workers if engine.number_of(c) > count] if options.workers is not None else [],
    )


def prepare(client: docker.DockerClient, project: Project, plan: UpPlan, existing: Existing, progress: Progress) -> None:
    """Pull missing images, refuse taken ports, build the worker image: all before anything is made."""
    for spec in plan.services:
        if spec.service != "worker" and project.container(spec.service) not in existing:
            ensure_pulled(client, spec.image, progress)
    check_ports_free(project, existing, plan.credentials)
    if plan.build:
        build_worker_image(client, project, plan.worker_image, plan.python_image, progress)


def apply(client: docker.DockerClient, project: Project, plan: UpPlan, existing: Existing, progress: Progress) -> UpReport:
    """Replace stale workers, make what is missing, start what is stopped, drop extra workers."""
    report = UpReport(plan.credentials, built=plan.build)
    report.removed += _remove_stale_workers(client, existing, plan.worker_image, plan.worker_queues)
    with Rollback() as undo:
        network, made = engine.network(client, project)
        if made:
            undo.add(network.remove)
        for service in ("broker", "backend"):
            volume, made = engine.volume(client, project, service)
            if made:
                undo.add(volume.remove)
        for spec in plan.services:
            name = project.container(spec.service, spec.number)
            if name not in existing:
                progress(f"creating {name}")
                existing[name] = engine.create(client, project, spec, network.name)
                undo.add(partial(existing[name].remove, force=True))
                report.created.append(name)
        wanted = [existing[project.container(spec.service, spec.number)] for spec in plan.services]
        stopped = [c for c in wanted if c.status != "running"]
        progress(f"starting {', '.join(c.name for c in stopped)}" if stopped else "already running")
        engine.start_all(stopped)
        report.started += [c.name for c in stopped if c.name not in report.created]
    engine.stop_and_remove(plan.extra_workers)
    report.removed += [c.name for c in plan.extra_workers]
    stored.save(project, plan.credentials)
    return report


class Rollback:
    """Undo steps of a failed `up`, run newest first when the block raises; what is already gone is ignored."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], object]] = []

    def add(self, step: Callable[[], object]) -> None:
        self.steps.append(step)

    def __enter__(self) -> Rollback:
        return self

    def __exit__(self, error_type: object, *_: object) -> None:
        if error_type is None:
            return
        import docker

        for step in reversed(self.steps):
            try:
                step()
            except docker.errors.APIError:
                pass


def _require_running(project: Project, existing: Existing, services: Iterable[str]) -> None:
    down = [s for s in services if getattr(existing.get(project.container(s)), "status", None) != "running"]
    if down:
        raise NotRunning(f"stack {project.name}: {' and '.join(down)} not running", hint="run 'tcel up' first")


def _remove_stale_workers(
    client: docker.DockerClient, existing: Existing, worker_image: str, queues: tuple[str, ...] | None
) -> list[str]:
    """Workers made from another image (tasks.py or the Dockerfile changed, or --build), or consuming other
    queues than asked, are replaced."""
    image_id = client.images.get(worker_image).id
    stale = [c for c in existing.values() if engine.service_of(c) == "worker"
             and (c.attrs["Image"] != image_id or engine.queues_of(c) != queues)]
    engine.stop_and_remove(stale)
    for c in stale:
        del existing[c.name]
    engine.remove_unused_worker_images(client, {c.attrs["Image"] for c in stale} - {image_id})
    return [c.name for c in stale]


def check_ports_free(project: Project, existing: Existing, access: Credentials) -> None:
    """Name the taken port before anything is made, rather than leave half a stack behind."""
    for service, port in (("broker", access.broker_port), ("backend", access.backend_port)):
        container = existing.get(project.container(service))
        if container is not None and container.status == "running":
            continue
        if not port_free(access.bind, port):
            raise PortInUse(
                f"port {port} on {access.bind} for the {service} is already in use",
                hint=f"choose another with --{service}-port or TCEL_{service.upper()}_PORT",
            )


def port_free(bind: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as Docker's proxy does: connections of an earlier listener in TIME_WAIT do not block the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError:
            return False
    return True
