"""Preparing and applying `tcel up` on plain containers: pull, check and build before anything is made; then
replace stale workers, make what is missing, start what is stopped, drop extra workers."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from ...credentials import Credentials
from ...output import Progress
from ...settings import Project
from .. import specs
from ..base import UpReport
from ..images import build_service_image, ensure_pulled, refresh
from ..ports import port_free, port_in_use
from ..rollback import Rollback
from ..specs import made_with_other_files
from . import data, docker_api
from .docker_api import Container
from .plan import Existing, UpPlan

if TYPE_CHECKING:
    import docker


def prepare(client: docker.DockerClient, project: Project, plan: UpPlan, progress: Progress) -> None:
    """Pull missing images, refuse taken ports, build the worker, Flower and exporter images: all before anything
    is made. With --pull, every pulled image is pulled again first."""
    if plan.pull:
        pulled = [spec.image for spec in plan.services if spec.service in ("broker", "backend")]
        plan.notes += refresh(client, [*pulled, plan.python_image], progress)[0]
    for spec in plan.services:
        if spec.service in ("broker", "backend") and (
            plan.pull or project.container(spec.service) not in plan.existing
        ):
            ensure_pulled(client, spec.image, progress)
            if spec.service == "broker" and plan.credentials.broker != "redis":
                data.check_broker_volume(client, project, spec.image)
    web = [spec.service for spec in plan.services if spec.service in ("flower", "metrics")]
    check_ports_free(project, plan.existing, plan.credentials, web)
    if plan.build:
        plan.image.build(client, plan.worker_image, plan.python_image, progress, pull=plan.pull)
    if plan.build_flower and plan.flower_image:
        build_service_image(client, "flower", plan.flower_image, plan.python_image, progress)
    tcel_image = plan.metrics_image or plan.autoscale_image  # the exporter's image runs the autoscaler too
    if plan.build_metrics and tcel_image:
        build_service_image(client, "metrics", tcel_image, plan.python_image, progress)


def apply(client: docker.DockerClient, project: Project, plan: UpPlan, undo: Rollback, progress: Progress) -> UpReport:
    """Replace stale workers, make what is missing (each registered with `undo`), start what is stopped, then
    drop extra workers."""
    existing = plan.existing
    report = UpReport(
        plan.credentials,
        built=plan.build or plan.build_flower or plan.build_metrics,
        notes=plan.notes,
        flower=plan.flower_image is not None,
        metrics=plan.metrics_image is not None,
        beat=plan.beat,
        autoscale=plan.autoscale,
    )
    docker_api.stop_and_remove(plan.replaced_autoscaler)  # another policy, or none: before anything else
    for c in plan.replaced_autoscaler:
        del existing[c.name]
    report.removed += [c.name for c in plan.replaced_autoscaler]
    worker_settings = (plan.worker_queues, plan.child_limits)
    report.removed += _remove_stale(client, existing, "worker", plan.worker_image, worker_settings)
    if plan.beat:  # stopped (and its lock released) before a new one is made
        report.removed += _remove_stale(client, existing, "beat", plan.worker_image)
    if plan.flower_image is not None:
        report.removed += _remove_stale(client, existing, "flower", plan.flower_image)
    if plan.metrics_image is not None:
        report.removed += _remove_stale(client, existing, "metrics", plan.metrics_image)
    for spec in plan.services if plan.pull else []:  # a broker or backend of an image older than the one pulled
        if spec.service in ("broker", "backend"):
            report.removed += _remove_stale(client, existing, spec.service, spec.image)
    if plan.autoscale_image is not None:
        report.removed += _remove_stale(client, existing, "autoscaler", plan.autoscale_image)
    report.removed += _remove_other_logins(project, existing, plan)
    network, made = docker_api.network(client, project)
    if made:
        undo.add(network.remove)
    broker_image = next(spec.image for spec in plan.services if spec.service == "broker")
    broker_data = (
        (specs.REDIS_BROKER_VOLUME, dict)
        if plan.credentials.broker == "redis"
        else ("broker", partial(data.written_by, client, broker_image))
    )
    for service, labels in (broker_data, ("backend", dict)):
        volume, made = docker_api.volume(client, project, service, labels)
        if made:
            undo.add(volume.remove)
    _create_and_start(client, project, plan, str(network.name), report, undo, progress)
    undo.keep()  # the stack runs: dropping extra workers below takes nothing back
    docker_api.stop_and_remove(plan.extra_workers + plan.extra_beat)
    report.removed += [c.name for c in plan.extra_workers + plan.extra_beat]
    return report


def _create_and_start(
    client: docker.DockerClient,
    project: Project,
    plan: UpPlan,
    network: str,
    report: UpReport,
    undo: Rollback,
    progress: Progress,
) -> None:
    """Make the missing containers and start the stopped ones. The broker takes seconds to boot: it starts as
    soon as it exists, and the rest are made meanwhile."""
    existing = plan.existing
    to_start: list[Container] = []
    with ThreadPoolExecutor(max_workers=1) as background:
        broker_start: Future[None] | None = None
        for spec in plan.services:
            name = project.container(spec.service, spec.number)
            if name not in existing:
                progress(f"creating {name}")
                existing[name] = docker_api.create(client, project, spec, network)
                undo.add(partial(docker_api.remove, existing[name]))
                report.created.append(name)
            if existing[name].status not in ("running", "restarting"):  # restarting: the engine starts it
                to_start.append(existing[name])
                if spec.service == "broker":
                    broker_start = background.submit(docker_api.start_all, [existing[name]])
        progress(f"starting {', '.join(c.name for c in to_start)}" if to_start else "already running")
        docker_api.start_all([c for c in to_start if c.service != "broker"])
        if broker_start is not None:
            broker_start.result()
    report.started += [c.name for c in to_start if c.name not in report.created]


def _remove_stale(
    client: docker.DockerClient,
    existing: Existing,
    service: str,
    image: str,
    settings: tuple[tuple[str, ...] | None, str] = (None, "0,0"),
) -> list[str]:
    """Workers (or Flower, or the exporter) made from another image (tasks.py or the Dockerfile changed, new pins in
    constraints.txt, --build), or workers consuming other queues or with other pool limits than asked (`settings`),
    are replaced."""
    image_id = docker_api.image_id(client, image)
    stale = [
        c
        for c in existing.values()
        if c.service == service
        and (c.image_id != image_id or (service == "worker" and (c.queues, c.child_limits) != settings))
    ]
    docker_api.stop_and_remove(stale)
    for c in stale:
        del existing[c.name]
    docker_api.remove_unused_images(client, {c.image_id for c in stale} - {image_id})
    return [c.name for c in stale]


def _remove_other_logins(project: Project, existing: Existing, plan: UpPlan) -> list[str]:
    """Containers made with other files (logins) than their spec's, such as every container of a stack made
    before each service had its own broker and backend user: replaced (the data stays in the volumes)."""
    stale = []
    for spec in plan.services:
        found = existing.get(project.container(spec.service, spec.number))
        if found is not None and made_with_other_files(project, spec, found.labels):
            stale.append(found)
    docker_api.stop_and_remove(stale)
    for c in stale:
        del existing[c.name]
    return [c.name for c in stale]


def check_ports_free(project: Project, existing: Existing, access: Credentials, web: list[str] | None = None) -> None:
    """Name the taken port before anything is made, rather than leave half a stack behind; `web`: the web
    services the stack runs (flower, metrics)."""
    published = [("broker", access.broker_port), ("backend", access.backend_port)]
    web_ports = {"flower": access.flower_port, "metrics": access.metrics_port}
    for service, port in published + [(service, web_ports[service]) for service in web or []]:
        container = existing.get(project.container(service))
        if container is not None and container.status == "running":
            continue
        if not port_free(access.bind, port):
            raise port_in_use(service, f"port {port} on {access.bind}")
