"""Moving a running stack's workers onto a new worker image, one at a time (`tcel up --watch`): each new worker
starts beside the one it replaces and must answer a Celery ping before the old one gets a warm shutdown, so
a broken change never takes a serving worker away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from ..credentials import Credentials
from ..output import Progress
from ..settings import Project
from . import engine, readiness, up
from .base import ReloadReport, UpOptions
from .images import BuildContext, build_worker_image, image_exists
from .lock import project_lock
from .specs import ServiceSpec

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


def replace_workers(
    client: docker.DockerClient,
    project: Project,
    options: UpOptions,
    grace: float,
    ready_timeout: float,
    progress: Progress,
) -> ReloadReport:
    """Build the image the project's files make now (if the engine lacks it), then replace every worker of
    another image with one of it; see Stack.replace_workers."""
    files = BuildContext.read(project.build_context)
    report = ReloadReport(files.image_name(options.python_image))
    with project_lock(project), engine.engine_errors(), ThreadPoolExecutor(max_workers=4) as background:
        building = background.submit(_build, client, project, report, options.python_image, files, progress)
        existing = {c.name: c for c in engine.containers(client, project)}  # meanwhile
        # the workers as `up` would make them now (count, settings), only from the image read above
        planned = up.plan(client, project, replace(options, workers_only=True), existing)
        building.result()

        started = time.monotonic()
        image_id = client.images.get(report.image).id
        old_images: set[str] = set()
        stopping: list[Future[None]] = []
        with _dropped_on_failure(client, image_id, report):
            for spec in planned.services:
                old = existing.get(project.container(spec.service, spec.number))
                if spec.service != "worker" or (old and old.status == "running" and old.attrs["Image"] == image_id):
                    continue
                if old is not None:
                    old_images.add(old.attrs["Image"])
                new = _start_beside(client, project, replace(spec, image=report.image), old, planned.credentials,
                                    ready_timeout, progress)
                report.replaced.append(new.name)
                if old is not None:
                    progress(f"{engine.hostname_of(old)}: warm shutdown, up to {grace:g}s for its running tasks")
                    stopping.append(background.submit(engine.stop_warm_and_remove, old, grace))
            for stopped in stopping:
                stopped.result()
        engine.remove_unused_images(client, old_images - {image_id})
        report.replace_seconds = time.monotonic() - started
    return report


def _build(
    client: docker.DockerClient,
    project: Project,
    report: ReloadReport,
    python_image: str,
    files: BuildContext,
    progress: Progress,
) -> None:
    """Build the report's image from `files` unless the engine has it already."""
    started = time.monotonic()
    if not image_exists(client, report.image):
        build_worker_image(client, project, report.image, python_image, progress, files)
        report.built = True
    report.build_seconds = time.monotonic() - started


@contextmanager
def _dropped_on_failure(client: docker.DockerClient, image_id: str, report: ReloadReport) -> Iterator[None]:
    """An image built by this reload that no worker could run is removed again (a broken save leaves none)."""
    try:
        yield
    except BaseException:
        if report.built and not report.replaced:
            engine.remove_unused_images(client, {image_id})
        raise


def _start_beside(
    client: docker.DockerClient,
    project: Project,
    spec: ServiceSpec,
    old: Container | None,
    access: Credentials,
    ready_timeout: float,
    progress: Progress,
) -> Container:
    """Start the worker `spec` describes while `old` (the one it replaces) still serves, and wait until it
    answers. The old one steps aside under another container name, and the new one gets a Celery node name
    of its own (the image in its host name), since two workers must never share one. Whatever fails, the new
    worker is removed and the old one takes its name back."""
    name = project.container(spec.service, spec.number)
    if old is not None and old.status != "running":
        engine.stop_and_remove([old])  # nothing of it serves: no need to keep it until the new one answers
        old = None
    if old is not None:
        hostname = f"{spec.key}-{spec.image.rpartition(':')[2][:6]}"
        spec = replace(spec, hostname=hostname if hostname != engine.hostname_of(old) else spec.key)
        engine.rename(old, f"{name}-old-{old.short_id}")
    new = None
    try:
        progress(f"starting {spec.hostname or spec.key} from {spec.image}")
        new = engine.create(client, project, spec, project.network)
        engine.start_all([new])
        readiness.wait_ready(project, [new], access, ready_timeout, progress)
    except BaseException:  # Ctrl-C too: the old worker goes on serving under its own name
        import docker

        try:
            if new is not None:
                new.remove(force=True)
            if old is not None:
                engine.rename(old, name)
        except docker.errors.APIError:
            pass
        raise
    return new
