"""The autoscaler's hands on Swarm: the worker service's replica count, set through the same
`service_spec.update` that `tcel scale` uses. Swarm chooses which task to stop when the count goes down and
stops it with the worker service's stop signal (a cold shutdown, as `tcel scale` and `down` on Swarm); the
policy removes a worker only when no task runs or waits, and with late acks one that raced it goes back to the
queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import NotRunning
from ...names import QUEUE
from ...settings import Project
from ..docker_client import engine_errors
from . import docker_api
from .docker_api import Service
from .service_spec import update

if TYPE_CHECKING:
    import docker


class SwarmScaler:
    def __init__(self, client: docker.DockerClient, project: Project) -> None:
        self.client = client
        self.project = project

    def _workers(self) -> Service:
        with engine_errors():
            found = [s for s in docker_api.services(self.client, self.project) if s.kind == "worker"]
        if not found:
            raise NotRunning(f"stack {self.project.name} has no worker service")
        return found[0]

    def count(self) -> int:
        """The replicas asked for (those starting count: the next look must not add them again)."""
        return self._workers().replicas

    def queues(self) -> list[str]:
        listed = self._workers().environment.get("CELERY_WORKER_QUEUES")
        return sorted(set(listed.split(","))) if listed else [QUEUE]

    def scale(self, target: int) -> list[str]:
        workers = self._workers()
        with engine_errors():
            update(workers, replicas=target)
        return [f"{workers.name} to {target} replicas"]
