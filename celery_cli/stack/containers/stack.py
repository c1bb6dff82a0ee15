"""The stack as plain containers on one Docker engine: a network, two data volumes, a container per service."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from functools import cached_property
from typing import TYPE_CHECKING

from ...credentials import Credentials
from ...errors import NotRunning
from ...output import Progress
from ..base import DownReport, PlannedStack, ReloadReport, ServiceStatus, UpOptions, UpReport
from ..choice import refuse_other_engine
from ..docker_client import connect, engine_errors, remove_networks, remove_volumes
from ..lock import project_lock
from ..rollback import Rollback
from ..swarm.docker_api import service_names
from . import docker_api, logs, plan, readiness, reload, state_copy, status, up
from .docker_api import Container
from .plan import UpPlan

if TYPE_CHECKING:
    import docker

    from ..readiness import Ready


class ContainerStack(PlannedStack[UpPlan]):
    """Containers `tcel-<project>-broker`, `-backend`, `-worker-N` on the network `tcel-<project>`."""

    engine = "containers"

    @cached_property
    def client(self) -> docker.DockerClient:
        return connect()

    def containers(self) -> list[Container]:
        with engine_errors():
            return docker_api.containers(self.client, self.project)

    def status(self) -> list[ServiceStatus]:
        found = self.containers()
        with engine_errors():
            return status.rows(found, docker_api.images_created(self.client, {c.image_id for c in found}))

    def plan(self, options: UpOptions, progress: Progress) -> UpPlan:
        refuse_other_engine(self.project, "containers", service_names(self.client, self.project))
        existing = {c.name: c for c in docker_api.containers(self.client, self.project)}
        return plan.plan(self.client, self.project, options, existing)

    def prepare(self, planned: UpPlan, progress: Progress) -> None:
        up.prepare(self.client, self.project, planned, progress)

    def apply(self, planned: UpPlan, undo: Rollback, progress: Progress) -> UpReport:
        return up.apply(self.client, self.project, planned, undo, progress)

    def settings(self, planned: UpPlan, report: UpReport) -> dict[str, str]:
        return planned.settings

    def keep_state(self, planned: UpPlan, report: UpReport) -> None:
        if report.changed or planned.recovered or not state_copy.exists(self.client, self.project):
            state_copy.keep(self.client, self.project, planned.services[0].image)

    def replace_workers(
        self, options: UpOptions, grace: float, ready_timeout: float, progress: Progress
    ) -> ReloadReport:
        return reload.replace_workers(self.client, self.project, options, grace, ready_timeout, progress)

    def wait_ready(self, credentials: Credentials, timeout: float, progress: Progress) -> Ready:
        return readiness.wait_ready(self.project, self.containers(), credentials, timeout, progress)

    def keep_stopped(self, hostnames: Collection[str]) -> None:
        with engine_errors():
            docker_api.stop([c for c in self.containers() if c.service == "worker" and c.hostname in hostnames])

    def logs(self, service: str | None, follow: bool, tail: int | None) -> Iterator[tuple[str, str]]:
        chosen = [c for c in self.containers() if logs.matches(c, service)]
        if not chosen:
            what = f"no {service!r} container" if service else "no containers"
            raise NotRunning(f"stack {self.project.name} has {what}", hint="see 'tcel status'")
        return logs.followed(chosen, tail) if follow else logs.interleaved(chosen, tail)

    def down(self, volumes: bool = False) -> DownReport:
        with project_lock(self.project, create=False), engine_errors():
            containers = docker_api.containers(self.client, self.project)
            if not containers:
                names = service_names(self.client, self.project)
                refuse_other_engine(self.project, "containers", names, command="down", volumes=volumes)
            autoscaler = [c for c in containers if c.service == "autoscaler"]
            if autoscaler:  # first, then look again: it may have added a worker meanwhile
                docker_api.stop_and_remove(autoscaler)
                containers = autoscaler + docker_api.containers(self.client, self.project)
            docker_api.stop_and_remove([c for c in containers if c not in autoscaler])
            return DownReport(
                engine=self.engine,
                containers=[c.name for c in containers],
                services=[],
                networks=remove_networks(self.client, self.project),
                volumes=remove_volumes(self.client, self.project) if volumes else [],
            )
