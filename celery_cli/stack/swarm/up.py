"""Preparing and applying `tcel up --swarm`: build the images before anything is made; then the network, the
registry (unless --registry), the pushed worker image, the broker and backend on the data node, the worker
service, Flower and the exporter, each undone by one rollback if a later step fails."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ... import credentials as stored
from ...output import Progress
from ...settings import Project
from .. import specs
from ..base import UpReport
from ..docker_client import remove_networks
from ..images import build_service_image, image_exists, refresh
from ..rollback import Rollback
from . import docker_api, registry, rollout
from .docker_api import Service
from .plan import SwarmPlan, published_note
from .service_spec import create_service

if TYPE_CHECKING:
    import docker


def prepare(client: docker.DockerClient, project: Project, plan: SwarmPlan, progress: Progress) -> bool:
    """With --pull, pull the broker's, backend's, Python base's and registry's images again (on this engine: a
    broker or backend service keeps the image it runs); build the worker (and Flower's, the exporter's) image when
    missing or asked; whether anything was built."""
    assert plan.image is not None, "the stack's plan names the worker image"
    options = plan.options
    if options.pull:
        _refresh(client, plan, progress)
    built = options.build or options.pull or not image_exists(client, plan.worker_image)
    if built:
        plan.image.build(client, plan.worker_image, options.python_image, progress, pull=options.pull)
    # the autoscaler runs the exporter's image: built once
    images = {plan.flower_image: "flower", plan.metrics_image: "metrics", plan.autoscale_image: "metrics"}
    for image, service in images.items():
        if image and (options.pull or not image_exists(client, image)):
            build_service_image(client, service, image, options.python_image, progress)
            built = True
    return built


def _refresh(client: docker.DockerClient, plan: SwarmPlan, progress: Progress) -> None:
    """`up --pull` on Swarm: this engine's images pulled again. A running broker or backend service keeps the
    image it runs (its data node may not be this engine); a note says how to move it."""
    options = plan.options
    pulled = [options.broker_image, options.backend_image, options.python_image]
    notes, changed = refresh(client, pulled + ([] if options.registry else [options.registry_image]), progress)
    plan.notes += notes
    for kind, image in (("broker", options.broker_image), ("backend", options.backend_image)):
        if image in changed and kind in plan.existing:
            plan.notes.append(
                f"the {kind} service keeps its image; 'tcel down' and 'tcel up' start it on the newer one"
            )


def apply(
    client: docker.DockerClient, project: Project, plan: SwarmPlan, undo: Rollback, progress: Progress
) -> UpReport:
    """Make and change the services; what a failure leaves is taken back by `undo` (see forget_on_failure)."""
    options, existing, access = plan.options, plan.existing, plan.credentials
    report = UpReport(
        access,
        built=plan.built,
        notes=plan.notes,
        flower=plan.with_flower,
        beat=plan.with_beat,
        metrics=plan.with_metrics,
        autoscale=plan.autoscale,
    )
    forget_on_failure(client, project, plan, undo, progress)
    network = str(docker_api.network(client, project).name)
    address = options.registry or registry.registry(
        client, project, options.registry_image, plan.registry_port, existing, network, access, report, progress
    )
    image = registry.push(client, plan.worker_image, address, progress)
    docker_api.label_data_node(client, project, plan.data_node)
    on_data_node = [f"node.labels.{docker_api.data_label(project)}==true"]
    for spec in (specs.broker(project, options, access), specs.backend(project, options, access)):
        if spec.service not in existing:
            progress(f"creating service {project.container(spec.service)}")
            existing[spec.service] = create_service(client, project, spec, network, 1, on_data_node)
            report.created.append(existing[spec.service].name)
    rollout.workers(client, project, options, existing, access, image, network, report, progress)
    rollout.beat(client, project, plan.with_beat, existing, access, image, network, report)
    plan.registry_port = "" if options.registry else address.rpartition(":")[2]
    if {project.container("broker"), project.container("backend")} & set(report.created):
        report.notes.append(published_note(plan.data_node.hostname, plan.registry_port or None))
    # after the broker's note, which Flower's and the exporter's ("...too") follow
    for service, local in (("flower", plan.flower_image), ("metrics", plan.metrics_image)):
        if local:
            where = rollout.Placement(address, network, plan.data_node)
            rollout.web_service(client, project, service, local, existing, access, where, report, progress)
    where = rollout.Placement(address, network, plan.data_node)
    rollout.autoscaler(client, project, plan.autoscale, plan.autoscale_image, existing, access, where, report, progress)
    return report


def forget_on_failure(
    client: docker.DockerClient, project: Project, plan: SwarmPlan, undo: Rollback, progress: Progress
) -> None:
    """Save the project's state before anything is made (a `down` after an `up` whose undo failed too finds
    the stack on Swarm), and register the undo of a failed `up`: remove the services it made (found again by
    label: one can exist that `up` did not get to record) and, when nothing of the stack ran before it, the
    network, secrets and data-node label too, as `down` does (the data volumes stay, as after `down`, and so do
    the credentials they were made with); the project's state then remembers the engine it remembered before."""
    previous = plan.kept.get("TCEL_ENGINE", "")
    stored.save(project, plan.credentials, plan.settings)
    undo.add(lambda: stored.save(project, plan.credentials, {**plan.settings, "TCEL_ENGINE": previous}))
    undo.add(partial(_remove_made, client, project, {service.id for service in plan.existing.values()}, progress))


def _remove_made(client: docker.DockerClient, project: Project, ran_before: set[str], progress: Progress) -> None:
    made = [s for s in docker_api.services(client, project) if s.id not in ran_before]
    if not made and ran_before:
        return
    progress(f"up failed: removing the {len(made)} service(s) it made" if made else "up failed: cleaning up")
    if ran_before:
        docker_api.remove_services(client, project, made)
    else:
        remove_all(client, project, made)


def remove_all(client: docker.DockerClient, project: Project, found: list[Service]) -> list[str]:
    """Remove the services, then the project's networks and secrets, its data-node label, and this engine's
    tags of images pushed to its registry; the names of the networks removed."""
    docker_api.remove_services(client, project, found)
    networks = remove_networks(client, project)
    docker_api.remove_secrets(client, project)
    docker_api.unlabel_data_node(client, project)
    registries = [s for s in found if s.kind == "registry"]
    if registries:
        registry.untag_pushed(client, f"127.0.0.1:{registries[0].published_port}")
    return networks
