"""Planning and applying `tcel up` on plain containers: what to pull, check, build, create, start and
remove, in that order; whatever this run made is removed again if a later step fails."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from .. import credentials as stored
from ..credentials import Credentials
from ..errors import NotRunning, PortInUse
from ..names import BACKEND_PORT, BROKER_PORT, FLOWER_PORT
from ..output import Progress
from ..settings import Project
from . import data, engine, specs
from .base import UpOptions, UpReport
from .images import (
    build_flower_image,
    build_worker_image,
    ensure_pulled,
    flower_image_name,
    image_exists,
    worker_image_name,
)
from .specs import ServiceSpec
from .worker_image import WorkerImage, worker_image

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

Existing = dict[str, "Container"]  # the project's containers by name


@dataclass
class UpPlan:
    """What `up` is to reach: every container the stack should have, and what that takes."""

    credentials: Credentials
    settings: dict[str, str]  # kept in the state file with the credentials
    notes: list[str]
    services: list[ServiceSpec]
    worker_image: str
    image: WorkerImage
    worker_queues: tuple[str, ...] | None
    python_image: str
    build: bool
    extra_workers: list[Container]  # numbered above an asked worker count
    flower_image: str | None = None  # when the stack has Flower
    build_flower: bool = False


def plan(client: docker.DockerClient, project: Project, options: UpOptions, existing: Existing) -> UpPlan:
    """Decide from the options and what exists; nothing is changed yet."""
    saved = stored.load(project)
    with_flower = not options.workers_only and (options.flower or project.container("flower") in existing)
    access, notes = _addresses(project, options, existing, saved or stored.generate(), saved is not None, with_flower)
    if options.workers_only:
        _require_running(project, existing, ("broker", "backend"))
    workers = [c for c in existing.values() if engine.service_of(c) == "worker"]
    count = options.workers or len(workers) or 1
    if options.queues is None and workers:  # workers keep their queues unless told otherwise
        options = replace(options, queues=engine.queues_of(workers[0]))
    image = worker_image(project, options.app, options.worker_command)
    worker_image_tag = worker_image_name(image, options.python_image)
    flower_image = flower_image_name(options.python_image) if with_flower else None
    if with_flower:
        access = access.with_flower_login()
    return UpPlan(
        credentials=access,
        settings={
            "TCEL_BROKER_IMAGE": options.broker_image,
            "TCEL_BACKEND_IMAGE": options.backend_image,
            "TCEL_PYTHON_IMAGE": options.python_image,
            "TCEL_CONCURRENCY": str(options.concurrency or ""),
            **image.kept(),
        },
        notes=notes,
        services=[
            specs.broker(project, options, access),
            specs.backend(project, options, access),
            *(specs.worker(n, options, access, worker_image_tag) for n in range(1, count + 1)),
            *([specs.flower(access, flower_image)] if flower_image else []),
        ],
        worker_image=worker_image_tag,
        image=image,
        worker_queues=options.queues,
        python_image=options.python_image,
        build=options.build or not image_exists(client, worker_image_tag),
        extra_workers=[c for c in workers if engine.number_of(c) > count] if options.workers is not None else [],
        flower_image=flower_image,
        build_flower=flower_image is not None and not image_exists(client, flower_image),
    )


def prepare(
    client: docker.DockerClient, project: Project, plan: UpPlan, existing: Existing, progress: Progress
) -> None:
    """Pull missing images, refuse taken ports, build the worker and Flower images: all before anything is made."""
    for spec in plan.services:
        if spec.service in ("broker", "backend") and project.container(spec.service) not in existing:
            ensure_pulled(client, spec.image, progress)
            if spec.service == "broker":
                data.check_broker_volume(client, project, spec.image)
    check_ports_free(project, existing, plan.credentials, with_flower=plan.flower_image is not None)
    if plan.build:
        build_worker_image(client, plan.image, plan.worker_image, plan.python_image, progress)
    if plan.build_flower and plan.flower_image:
        build_flower_image(client, plan.flower_image, plan.python_image, progress)


def apply(
    client: docker.DockerClient, project: Project, plan: UpPlan, existing: Existing, progress: Progress
) -> UpReport:
    """Replace stale workers, make what is missing, start what is stopped, drop extra workers."""
    report = UpReport(
        plan.credentials, built=plan.build or plan.build_flower, notes=plan.notes, flower=plan.flower_image is not None
    )
    report.removed += _remove_stale_workers(client, existing, plan.worker_image, plan.worker_queues)
    report.removed += _remove_stale_flower(client, existing, plan.flower_image)
    with Rollback() as undo:
        network, made = engine.network(client, project)
        if made:
            undo.add(network.remove)
        broker_image = next(spec.image for spec in plan.services if spec.service == "broker")
        for service, labels in (("broker", partial(data.written_by, client, broker_image)), ("backend", dict)):
            volume, made = engine.volume(client, project, service, labels)
            if made:
                undo.add(volume.remove)
        # The broker takes seconds to boot: start it as soon as it exists, and make the rest meanwhile.
        to_start: list[Container] = []
        with ThreadPoolExecutor(max_workers=1) as background:
            broker_start = None
            for spec in plan.services:
                name = project.container(spec.service, spec.number)
                if name not in existing:
                    progress(f"creating {name}")
                    existing[name] = engine.create(client, project, spec, network.name)
                    undo.add(partial(existing[name].remove, force=True))
                    report.created.append(name)
                if existing[name].status != "running":
                    to_start.append(existing[name])
                    if spec.service == "broker":
                        broker_start = background.submit(engine.start_all, [existing[name]])
            progress(f"starting {', '.join(c.name for c in to_start)}" if to_start else "already running")
            engine.start_all([c for c in to_start if engine.service_of(c) != "broker"])
            if broker_start is not None:
                broker_start.result()
        report.started += [c.name for c in to_start if c.name not in report.created]
    engine.stop_and_remove(plan.extra_workers)
    report.removed += [c.name for c in plan.extra_workers]
    stored.save(project, plan.credentials, plan.settings)
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
            with contextlib.suppress(docker.errors.APIError):
                step()


def _addresses(
    project: Project, options: UpOptions, existing: Existing, access: Credentials, saved: bool, with_flower: bool
) -> tuple[Credentials, list[str]]:
    """Where the broker, backend (and Flower) are published: a stack that exists keeps its address and ports;
    a port the user asked for is used (a taken one is refused later); otherwise the project's kept port or
    the default, and a free port when that one is taken, so a second project starts beside the first."""
    broker_ip, broker_bound = engine.binding(existing.get(project.container("broker")), BROKER_PORT)
    _, backend_bound = engine.binding(existing.get(project.container("backend")), BACKEND_PORT)
    _, flower_bound = engine.binding(existing.get(project.container("flower")), FLOWER_PORT)
    bind = broker_ip or options.bind
    notes: list[str] = []

    def choose(service: str, bound: int | None, asked: int | None, kept: int) -> int:
        if bound or asked:
            return bound or asked
        if port_free(bind, kept):
            return kept
        chosen = free_port(bind)
        notes.append(
            f"port {kept} on {bind} is taken: the {service} uses {chosen}, kept for project "
            f"{project.name} (--{service}-port chooses one)"
        )
        return chosen

    kept = (access.broker_port, access.backend_port) if saved else (BROKER_PORT, BACKEND_PORT)
    ports = (
        choose("broker", broker_bound, options.broker_port, kept[0]),
        choose("backend", backend_bound, options.backend_port, kept[1]),
    )
    access = access.with_ports(bind, *ports)
    if with_flower:
        kept_flower = access.flower_port if saved else FLOWER_PORT
        access = replace(access, flower_port=choose("flower", flower_bound, options.flower_port, kept_flower))
    return access, notes


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
    stale = [
        c
        for c in existing.values()
        if engine.service_of(c) == "worker" and (c.attrs["Image"] != image_id or engine.queues_of(c) != queues)
    ]
    engine.stop_and_remove(stale)
    for c in stale:
        del existing[c.name]
    engine.remove_unused_images(client, {c.attrs["Image"] for c in stale} - {image_id})
    return [c.name for c in stale]


def _remove_stale_flower(client: docker.DockerClient, existing: Existing, flower_image: str | None) -> list[str]:
    """A Flower made from another image (new pins in constraints.txt, another Python base) is replaced."""
    if flower_image is None:
        return []
    image_id = client.images.get(flower_image).id
    stale = [c for c in existing.values() if engine.service_of(c) == "flower" and c.attrs["Image"] != image_id]
    engine.stop_and_remove(stale)
    for c in stale:
        del existing[c.name]
    engine.remove_unused_images(client, {c.attrs["Image"] for c in stale} - {image_id})
    return [c.name for c in stale]


def check_ports_free(project: Project, existing: Existing, access: Credentials, with_flower: bool = False) -> None:
    """Name the taken port before anything is made, rather than leave half a stack behind."""
    published = [("broker", access.broker_port), ("backend", access.backend_port)]
    for service, port in published + ([("flower", access.flower_port)] if with_flower else []):
        container = existing.get(project.container(service))
        if container is not None and container.status == "running":
            continue
        if not port_free(access.bind, port):
            raise PortInUse(
                f"port {port} on {access.bind} for the {service} is already in use",
                hint=f"choose another with --{service}-port or TCEL_{service.upper()}_PORT",
            )


def free_port(bind: str) -> int:
    """A port nothing listens on now, as the system picks one."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((bind, 0))
        return probe.getsockname()[1]


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
