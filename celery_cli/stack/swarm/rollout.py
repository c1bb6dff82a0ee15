"""Rolling the stack's images out on Swarm: the worker service created, or brought to the image, settings
(concurrency, queues) and replica count asked for (a new image or setting is a rolling update, one replica at a
time); the Flower and exporter services likewise; the beat service (one replica, stop-first: the old beat
releases RedBeat's lock before the new one starts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...credentials import Credentials
from ...names import LABEL_AUTOSCALE, LABEL_QUEUES
from ...output import Progress
from ...settings import Project
from .. import specs
from ..base import UpOptions, UpReport
from ..images import SERVICE_IMAGES
from . import docker_api
from .docker_api import Service
from .plan import FLOWER_PUBLISHED_NOTE, METRICS_PUBLISHED_NOTE, worker_change
from .prepull import prepull
from .registry import push
from .service_spec import create_service, update

if TYPE_CHECKING:
    import docker


def workers(
    client: docker.DockerClient,
    project: Project,
    options: UpOptions,
    existing: dict[str, Service],
    access: Credentials,
    image: str,
    network: str,
    report: UpReport,
    progress: Progress,
) -> None:
    """Create the worker service, or bring its image, settings and replica count to what is asked."""
    worker = existing.get("worker")
    spec = specs.worker(0, options, access, image)
    if worker is None:
        count = options.workers or 1
        prepull(client, project, image, [], progress)
        progress(f"creating service {project.container('worker')} with {count} replica(s)")
        existing["worker"] = create_service(client, project, spec, network, replicas=count, constraints=[])
        report.created.append(existing["worker"].name)
        return
    change = worker_change(worker.spec_image, worker.environment, worker.replicas, spec.environment, image, options)
    if change.image or change.settings:
        what = change.described
        progress(f"updating service {worker.name} " + (f"({', '.join(what)})" if what else f"to {image}"))
        labels = (
            {LABEL_QUEUES: spec.labels(project)[LABEL_QUEUES]} if "CELERY_WORKER_QUEUES" in change.settings else None
        )
        if change.image:
            prepull(client, project, change.image, [], progress)
        update(worker, image=image, environment=change.settings, labels=labels)
        report.started.append(worker.name)
        report.changes.append(f"{worker.name}: {', '.join(what)}" if change.settings else f"{worker.name}: new image")
    was, now = change.replicas
    if was != now:
        progress(f"scaling service {worker.name} from {was} to {now}")
        update(worker, replicas=now)
        if worker.name not in report.started:
            (report.started if now > was else report.removed).append(worker.name)
        report.changes.append(f"{worker.name}: {was} -> {now} replicas")


def beat(
    client: docker.DockerClient,
    project: Project,
    wanted: bool,
    existing: dict[str, Service],
    access: Credentials,
    image: str,
    network: str,
    report: UpReport,
) -> None:
    """Create the beat service on the data node from the workers' image, bring it to a new one (Swarm's default
    update stops the old task first), or remove it (`up --no-beat`)."""
    running = existing.get("beat")
    if not wanted:
        if running is not None:
            docker_api.remove_services(client, project, [running])
            report.removed.append(running.name)
            del existing["beat"]
        return
    if running is None:
        on_data_node = [f"node.labels.{docker_api.data_label(project)}==true"]
        existing["beat"] = create_service(client, project, specs.beat(access, image), network, 1, on_data_node)
        report.created.append(existing["beat"].name)
    elif running.spec_image != image:
        update(running, image=image)
        report.started.append(running.name)


@dataclass(frozen=True)
class Placement:
    """Where a service of the stack goes: the registry its image is pushed to, the network, the data node."""

    registry: str
    network: str
    data_node: docker_api.Node


WEB_SPECS = {"flower": (specs.flower, FLOWER_PUBLISHED_NOTE), "metrics": (specs.metrics, METRICS_PUBLISHED_NOTE)}


def web_service(
    client: docker.DockerClient,
    project: Project,
    service: str,
    local: str,
    existing: dict[str, Service],
    access: Credentials,
    where: Placement,
    report: UpReport,
    progress: Progress,
) -> None:
    """Create Flower's or the exporter's service on the data node (its port published there, as the broker's)
    from the image `local` (built by `up` before anything was made), pushed as the worker's; or bring a running
    one to it."""
    running = existing.get(service)
    if running is not None and running.image == f"{where.registry}/{local}":
        return  # runs what tcel's files make now: nothing to push (a reload of the workers pays no push)
    make_spec, note = WEB_SPECS[service]
    image = push(client, local, where.registry, progress, what=SERVICE_IMAGES[service].what)
    on_data_node = [f"node.labels.{docker_api.data_label(project)}==true"]
    prepull(client, project, image, on_data_node, progress)
    if running is None:
        progress(f"creating service {project.container(service)}")
        existing[service] = create_service(
            client, project, make_spec(access, image, project), where.network, 1, on_data_node
        )
        report.created.append(existing[service].name)
        port = access.flower_port if service == "flower" else access.metrics_port
        report.notes.append(note.format(port=port, node=where.data_node.hostname))
    elif running.spec_image != image:
        progress(f"updating service {running.name} to {image}")
        update(running, image=image)
        report.started.append(running.name)


def autoscaler(
    client: docker.DockerClient,
    project: Project,
    policy: str,
    local: str | None,
    existing: dict[str, Service],
    access: Credentials,
    where: Placement,
    report: UpReport,
    progress: Progress,
) -> None:
    """The autoscaler's service (one replica on a manager, whose engine's API can scale the worker service),
    from the exporter's image `local` pushed as the worker's; replaced when it runs another policy or image,
    removed when the stack has no policy."""
    running = existing.get("autoscaler")
    image = push(client, local, where.registry, progress, what="autoscaler image") if policy and local else None
    if running is not None and (running.labels.get(LABEL_AUTOSCALE) != policy or running.spec_image != image):
        docker_api.remove_services(client, project, [running])
        report.removed.append(running.name)
        del existing["autoscaler"]
    if image is None or "autoscaler" in existing:
        return
    prepull(client, project, image, ["node.role==manager"], progress)
    progress(f"creating service {project.container('autoscaler')}")
    spec = specs.autoscaler(project, access, image, policy, "swarm")
    existing["autoscaler"] = create_service(client, project, spec, where.network, 1, ["node.role==manager"])
    report.created.append(existing["autoscaler"].name)
