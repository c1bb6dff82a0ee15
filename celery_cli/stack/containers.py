"""The stack as plain containers on one Docker engine: a network, two data volumes, a container per service."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING

from ..credentials import Credentials
from ..errors import NotRunning
from ..output import Progress
from . import engine, logs, readiness, refuse_other_engine, reload, swarm_engine, up
from .base import DownReport, ReloadReport, ServiceStatus, Stack, UpOptions, UpReport
from .lock import project_lock

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


class ContainerStack(Stack):
    """Containers `tcel-<project>-broker`, `-backend`, `-worker-N` on the network `tcel-<project>`."""

    @cached_property
    def client(self) -> docker.DockerClient:
        return engine.connect()

    def containers(self) -> list[Container]:
        with engine.engine_errors():
            return engine.containers(self.client, self.project)

    def status(self) -> list[ServiceStatus]:
        return [
            ServiceStatus(
                service=engine.service_of(c),
                name=c.name,
                hostname=engine.hostname_of(c),
                state=c.status,
                ready=None if c.status == "running" else False,
                image=c.attrs["Config"]["Image"],
                ports=engine.ports(c),
                started_at=engine.started_at(c),
            )
            for c in self.containers()
        ]

    def up(self, options: UpOptions, progress: Progress) -> UpReport:
        with project_lock(self.project), engine.engine_errors():  # one clear line for whatever the engine refuses
            refuse_other_engine(self.project, "containers", swarm_engine.service_names(self.client, self.project))
            existing = {c.name: c for c in engine.containers(self.client, self.project)}
            planned = up.plan(self.client, self.project, options, existing)
            up.prepare(self.client, self.project, planned, existing, progress)
            return up.apply(self.client, self.project, planned, existing, progress)

    def replace_workers(
        self, options: UpOptions, grace: float, ready_timeout: float, progress: Progress
    ) -> ReloadReport:
        return reload.replace_workers(self.client, self.project, options, grace, ready_timeout, progress)

    def wait_ready(self, credentials: Credentials, timeout: float, progress: Progress) -> float:
        return readiness.wait_ready(self.project, self.containers(), credentials, timeout, progress)

    def logs(self, service: str | None, follow: bool, tail: int | None) -> Iterator[tuple[str, str]]:
        chosen = [c for c in self.containers() if logs.matches(c, service)]
        if not chosen:
            what = f"no {service!r} container" if service else "no containers"
            raise NotRunning(f"stack {self.project.name} has {what}", hint="see 'tcel status'")
        return logs.followed(chosen, tail) if follow else logs.interleaved(chosen, tail)

    def down(self, volumes: bool = False) -> DownReport:
        with project_lock(self.project, create=False), engine.engine_errors():
            containers = engine.containers(self.client, self.project)
            if not containers:
                refuse_other_engine(
                    self.project,
                    "containers",
                    swarm_engine.service_names(self.client, self.project),
                    command="down",
                    volumes=volumes,
                )
            engine.stop_and_remove(containers)
            return DownReport(
                containers=[c.name for c in containers],
                networks=engine.remove_networks(self.client, self.project),
                volumes=engine.remove_volumes(self.client, self.project) if volumes else [],
            )
