"""Moving a running stack's workers onto a new worker image, one at a time (`tcel up --watch`): each new worker
starts beside the one it replaces and must answer a Celery ping before the old one gets a warm shutdown, so
a broken change never takes a serving worker away."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from ...credentials import Credentials
from ...output import Progress
from ...settings import Project
from ..base import ReloadInterrupted, ReloadReport, UpOptions
from ..docker_client import engine_errors
from ..images import image_exists
from ..lock import project_lock
from ..rollback import Rollback
from ..specs import ServiceSpec
from ..worker_image import WorkerImage, worker_image
from . import docker_api, plan, readiness
from .docker_api import Container

if TYPE_CHECKING:
    import docker

T = TypeVar("T")


@dataclass
class _Replacing:
    """Where a reload is: the workers to move, those moved, the old ones in their warm shutdown."""

    image_id: str
    stale: list[ServiceSpec]
    olds: dict[str, Container | None]  # by worker key
    moved: list[str] = field(default_factory=list)  # the workers now on the new image
    stopping: list[tuple[Container, Future[None]]] = field(default_factory=list)
    old_images: set[str] = field(default_factory=set)


def replace_workers(
    client: docker.DockerClient,
    project: Project,
    options: UpOptions,
    grace: float,
    ready_timeout: float,
    progress: Progress,
) -> ReloadReport:
    """Build the image the project's files make now (if the engine lacks it), then replace every worker of
    another image with one of it; see Stack.replace_workers. Ctrl-C ends it within a second or two, without
    waiting for the build or a grace: it raises ReloadInterrupted, which says where the workers were left."""
    image = worker_image(project, options.app, options.worker_command)
    report = ReloadReport(image.name(options.python_image))
    with project_lock(project), engine_errors():
        building = _in_background(_build, client, image, report, options.python_image, progress)
        try:
            existing = {c.name: c for c in docker_api.containers(client, project)}  # meanwhile
            # the workers as `up` would make them now (count, settings), only from the image read above
            planned = plan.plan(client, project, replace(options, workers_only=True), existing)
            building.result()
        except KeyboardInterrupt:
            # the build goes on in a thread nobody waits for; the engine drops it when tcel exits
            doing = "before replacing any worker" if building.done() else f"while building {report.image}"
            raise ReloadInterrupted(f"interrupted {doing}: every worker still runs its old image") from None
        started = time.monotonic()
        image_id = docker_api.image_id(client, report.image)
        olds = {spec.key: existing.get(project.container(spec.service, spec.number)) for spec in planned.services}
        state_images = {old.image_id for old in olds.values() if old is not None and old.service == "beat"}
        stale = [spec for spec in planned.services if spec.service == "worker" and not _runs(olds[spec.key], image_id)]
        state = _Replacing(image_id, stale, olds, old_images=state_images)
        try:
            _replace_one_by_one(client, project, state, planned.credentials, report, grace, ready_timeout, progress)
        except KeyboardInterrupt:
            behind = [s.key for s in stale if s.key not in state.moved]
            raise ReloadInterrupted(
                _cut_short(report.image, behind, state.moved, state.stopping, grace, progress)
            ) from None
        _replace_beat(client, project, olds.get("beat"), planned.services, report)
        docker_api.remove_unused_images(client, state.old_images - {image_id})
        report.replace_seconds = time.monotonic() - started
    return report


def _replace_one_by_one(
    client: docker.DockerClient,
    project: Project,
    state: _Replacing,
    access: Credentials,
    report: ReloadReport,
    grace: float,
    ready_timeout: float,
    progress: Progress,
) -> None:
    """Start each stale worker's successor and, once it answers, give the old one its warm shutdown; wait
    until every old one has stopped. An image this reload built that no worker could run is removed again."""

    def drop_unused_build() -> None:
        if report.built and not report.replaced:
            docker_api.remove_unused_images(client, {state.image_id})

    with Rollback() as undo:
        undo.add(drop_unused_build)
        try:
            for spec in state.stale:
                old = state.olds[spec.key]
                if old is not None:
                    state.old_images.add(old.image_id)
                new_spec = replace(spec, image=report.image)
                new = _start_beside(client, project, new_spec, old, access, ready_timeout, progress)
                report.replaced.append(new.name)
                state.moved.append(spec.key)
                if old is not None:
                    progress(f"{old.hostname}: warm shutdown, up to {grace:g}s for its tasks")
                    state.stopping.append((old, _in_background(docker_api.stop_warm_and_remove, old, grace)))
        except Exception:
            futures.wait([stopped for _, stopped in state.stopping])  # the replaced ones stop as they would
            raise
    for _, stopped in state.stopping:
        stopped.result()


def _replace_beat(
    client: docker.DockerClient,
    project: Project,
    old: Container | None,
    services: list[ServiceSpec],
    report: ReloadReport,
) -> None:
    """Move the beat onto the new image once the workers run it (the schedule's code may have changed): the old
    one stops first and releases RedBeat's lock, so the two never both send."""
    spec = next((s for s in services if s.service == "beat"), None)
    if spec is None or (old is not None and old.status == "running" and old.image == report.image):
        return
    if old is not None:
        docker_api.stop_and_remove([old])
    new = docker_api.create(client, project, replace(spec, image=report.image), project.network)
    docker_api.start_all([new])
    report.replaced.append(new.name)


def _runs(container: Container | None, image_id: str) -> bool:
    return container is not None and container.status == "running" and container.image_id == image_id


def _in_background(action: Callable[..., T], *args: object) -> Future[T]:
    """Run `action` in a daemon thread: unlike a ThreadPoolExecutor's, neither Ctrl-C nor tcel's exit waits for
    it (a build left so is dropped by the engine once tcel's connection closes)."""
    future: Future[T] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(action(*args))
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=run, name=f"tcel-{getattr(action, '__name__', 'reload')}", daemon=True).start()
    return future


def _cut_short(
    image: str,
    behind: list[str],
    moved: list[str],
    stopping: list[tuple[Container, Future[None]]],
    grace: float,
    progress: Progress,
) -> str:
    """After Ctrl-C in the middle of a reload: stop the old workers still in their warm shutdown the way `down`
    does (a second at most; with late acks their running tasks go back to the queue, where the new workers
    take them), rather than leave them running with nobody to end their grace; say where every worker is."""
    import docker

    pending = [old for old, stopped in stopping if not stopped.done()]
    told = []
    if moved:
        told.append(f"{', '.join(moved)} {_verb(moved, 'runs', 'run')} {image}")
    if behind:
        told.append(
            f"{', '.join(behind)} still {_verb(behind, 'runs its', 'run their')} old image ('tcel up' "
            f"replaces {_verb(behind, 'it', 'them')})"
        )
    if pending:
        names = ", ".join(old.hostname for old in pending)
        progress(f"interrupted: stopping the old {names} now, without the rest of the {grace:g}s grace")
        outcome = (
            f"the old {names} stopped without the rest of the {grace:g}s grace (running tasks went back to the queue)"
        )
        try:
            docker_api.stop_and_remove(pending)
        except docker.errors.APIError:
            pass  # its own thread was removing it meanwhile
        except KeyboardInterrupt:  # a second Ctrl-C
            outcome = (
                f"the old {names} {_verb(pending, 'is', 'are')} still in a warm shutdown of up to {grace:g}s "
                f"({', '.join(old.name for old in pending)}; 'tcel up' removes {_verb(pending, 'it', 'them')})"
            )
        told.append(outcome)
    return "interrupted during the reload: " + "; ".join(told or ["every worker still runs its old image"])


def _verb(items: list[str] | list[Container], one: str, many: str) -> str:
    return one if len(items) == 1 else many


def _build(
    client: docker.DockerClient,
    image: WorkerImage,
    report: ReloadReport,
    python_image: str,
    progress: Progress,
) -> None:
    """Build the report's image from what `image` read unless the engine has it already."""
    started = time.monotonic()
    if not image_exists(client, report.image):
        image.build(client, report.image, python_image, progress)
        report.built = True
    report.build_seconds = time.monotonic() - started


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
    of its own (the image in its host name), since two workers must never share one. Whatever fails (Ctrl-C
    too), the new worker is removed and the old one takes its name back and goes on serving."""
    name = project.container(spec.service, spec.number)
    if old is not None and old.status != "running":
        docker_api.stop_and_remove([old])  # nothing of it serves: no need to keep it until the new one answers
        old = None
    with Rollback() as undo:
        if old is not None:
            hostname = f"{spec.key}-{spec.image.rpartition(':')[2][:6]}"
            spec = replace(spec, hostname=hostname if hostname != old.hostname else spec.key)
            docker_api.rename(old, f"{name}-old-{old.short_id}")
            undo.add(lambda: docker_api.rename(old, name))
        progress(f"starting {spec.hostname or spec.key} from {spec.image}")
        new = docker_api.create(client, project, spec, project.network)
        undo.add(lambda: docker_api.remove(new))
        docker_api.start_all([new])
        readiness.wait_ready(project, [new], access, ready_timeout, progress)
    return new
