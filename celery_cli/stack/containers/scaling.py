"""Adding and removing workers on plain containers, for the autoscaler (which runs in the stack, without the
project's files or state): a new worker is made as `tcel scale` makes one (the same spec fields, the same
`docker_api.create`), copied from the newest running worker (its image, environment, queues and pool limits)
and numbered after the highest; a removed worker gets the warm shutdown `up --watch` gives a replaced one
(SIGTERM: it takes no new task and finishes those it runs, for up to `grace` seconds; with late acks whatever
is left goes back to the queue)."""

from __future__ import annotations

from threading import Thread
from typing import TYPE_CHECKING

from ...settings import Project
from ..docker_client import engine_errors
from ..specs import WORKER_STOP_TIMEOUT, ServiceSpec
from . import docker_api
from .docker_api import Container

if TYPE_CHECKING:
    import docker


def workers(client: docker.DockerClient, project: Project) -> list[Container]:
    """The project's running workers, by number."""
    with engine_errors():
        found = docker_api.containers(client, project)
    return [c for c in found if c.service == "worker" and c.status in ("running", "restarting")]


def add(client: docker.DockerClient, project: Project, count: int) -> list[str]:
    """Make and start `count` workers like the newest running one (else the newest of any state: all may be
    down at once); their container names."""
    with engine_errors():
        every = [c for c in docker_api.containers(client, project) if c.service == "worker"]
    running = [c for c in every if c.status in ("running", "restarting")]
    if not every or count < 1:
        return []
    model = (running or every)[-1]
    highest = max(c.number for c in every)
    with engine_errors():
        made = [
            docker_api.create(client, project, _spec(model, highest + n), project.network) for n in range(1, count + 1)
        ]
        docker_api.start_all(made)
    return [c.name for c in made]


def _spec(model: Container, number: int) -> ServiceSpec:
    return ServiceSpec(
        "worker",
        number,
        model.image,
        environment=model.environment,
        files=secret_files(model),
        stop_signal="SIGQUIT",  # as specs.worker: `down` stops it cold
        stop_timeout=WORKER_STOP_TIMEOUT,
        queues=model.queues,
        child_limits=model.child_limits,
    )


def secret_files(model: Container) -> dict[str, bytes]:
    """The files the model's CELERY_*_FILE variables name (its URLs, kept out of its environment), read from the
    model, to be put into the copy before it starts: without them the copy cannot reach the broker."""
    import io
    import tarfile

    files = {}
    for key, path in model.environment.items():
        if key.endswith("_FILE") and path:
            with engine_errors():
                stream, _ = model.raw.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                content = tar.extractfile(member) if member else None
                files[path] = content.read() if content else b""
    return files


def remove(worker: Container, grace: float) -> None:
    """Warm shutdown of one worker, then remove it (blocks up to `grace` seconds)."""
    with engine_errors():
        docker_api.stop_warm_and_remove(worker, grace)


class ContainerScaler:
    """The autoscaler's hands on plain containers: counts the running workers (less those it is removing), adds
    workers, removes the highest-numbered one in the background so that its warm shutdown does not hold up the
    next look."""

    def __init__(self, client: docker.DockerClient, project: Project, grace: float) -> None:
        self.client = client
        self.project = project
        self.grace = grace
        self.draining: dict[str, Thread] = {}

    def _serving(self) -> list[Container]:
        self.draining = {name: t for name, t in self.draining.items() if t.is_alive()}
        return [c for c in workers(self.client, self.project) if c.name not in self.draining]

    def count(self) -> int:
        return len(self._serving())

    def queues(self) -> list[str]:
        """The queues the running workers consume (Celery's default one for a worker started without --queues)."""
        from ...names import QUEUE

        return sorted({q for c in self._serving() for q in c.queues or (QUEUE,)} or {QUEUE})

    def scale(self, target: int) -> list[str]:
        """Run `target` workers: the names of the workers added, or of the one being removed."""
        serving = self._serving()
        if target > len(serving):
            return add(self.client, self.project, target - len(serving))
        gone = serving[max(target, 0) :]
        for worker in gone:
            self.draining[worker.name] = Thread(target=remove, args=(worker, self.grace), daemon=True)
            self.draining[worker.name].start()
        return [c.name for c in gone]
