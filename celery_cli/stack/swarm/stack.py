"""The stack as Docker Swarm services across the swarm's nodes: broker and backend on the data node, a
replicated worker service spread over the nodes, passwords as secrets, the worker image through a registry."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from functools import cached_property
from typing import TYPE_CHECKING

from ... import credentials as stored
from ...credentials import Credentials
from ...output import Progress
from ..base import DownReport, PlannedStack, ReloadReport, ServiceStatus, UpOptions, UpReport
from ..choice import refuse_other_engine
from ..containers.docker_api import containers, images_created
from ..docker_client import connect, engine_errors, remove_volumes
from ..images import service_image_name
from ..lock import project_lock
from ..rollback import Rollback
from ..worker_image import worker_image
from . import docker_api, logs, plan, readiness, state_copy, status, up
from .docker_api import Service
from .plan import SwarmPlan

if TYPE_CHECKING:
    import docker

    from ..readiness import Ready


class SwarmStack(PlannedStack[SwarmPlan]):
    """Services `tcel-<project>-broker`, `-backend`, `-worker`, `-flower` with --flower (and `-registry`,
    `-registry-mirror` when tcel carries the images itself) on the overlay network `tcel-<project>`."""

    engine = "swarm"

    @cached_property
    def client(self) -> docker.DockerClient:
        return connect()

    def services(self) -> dict[str, Service]:
        """The project's services by what they are: broker, backend, worker, flower, registry, registry-mirror."""
        if not self._in_swarm():
            return {}
        with engine_errors():
            return {s.kind: s for s in docker_api.services(self.client, self.project)}

    def _in_swarm(self) -> bool:
        with engine_errors():
            return docker_api.is_manager(self.client)

    def status(self) -> list[ServiceStatus]:
        found = self.services()
        if not found:
            return []
        with engine_errors():
            # the images as this engine has them: one only another node has is of unknown age
            created = images_created(self.client, {s.image for s in found.values()})
            return status.rows(found, docker_api.node_names(self.client), created)

    def plan(self, options: UpOptions, progress: Progress) -> SwarmPlan:
        client, project = self.client, self.project
        # before anything is made or a swarm initialised
        refuse_other_engine(project, "swarm", [c.name for c in containers(client, project)])
        made_swarm = plan.membership(client.info(), options.swarm_init)
        if made_swarm:
            progress("making this engine a single-node swarm manager")
            docker_api.init_swarm(client)
        existing = {s.kind: s for s in docker_api.services(client, project)}
        # a lost state file comes back from the swarm's copy first: it names the data node too
        recovered = state_copy.recovered(client, project, existing) if stored.load(project) is None else None
        kept = stored.kept(project)
        data_node = docker_api.node_of(client, options.data_node or kept.get("TCEL_DATA_NODE"))
        here = data_node.id == docker_api.manager_id(client)
        saved = stored.load(project)
        saved = saved.with_role_passwords() if saved is not None else None  # a state from before the roles
        planned = plan.plan(project, options, existing, kept, saved, stored.generate(project), data_node, here)
        if made_swarm:
            planned.notes.insert(0, plan.INIT_NOTE)
        if recovered is not None:
            planned.notes.insert(0, recovered.note)
        planned.image = worker_image(project, options.app, options.worker_command)
        planned.worker_image = planned.image.name(options.python_image)
        python = options.python_image
        planned.flower_image = service_image_name("flower", python) if planned.with_flower else None
        planned.metrics_image = service_image_name("metrics", python) if planned.with_metrics else None
        planned.autoscale_image = service_image_name("metrics", python) if planned.autoscale else None
        return planned

    def prepare(self, planned: SwarmPlan, progress: Progress) -> None:
        planned.built = up.prepare(self.client, self.project, planned, progress)

    def apply(self, planned: SwarmPlan, undo: Rollback, progress: Progress) -> UpReport:
        return up.apply(self.client, self.project, planned, undo, progress)

    def settings(self, planned: SwarmPlan, report: UpReport) -> dict[str, str]:
        return planned.settings

    def keep_state(self, planned: SwarmPlan, report: UpReport) -> None:
        state_copy.keep(self.client, self.project)

    def wait_ready(self, credentials: Credentials, timeout: float, progress: Progress) -> Ready:
        return readiness.wait_ready(self.services(), credentials, timeout, progress)

    def replace_workers(
        self, options: UpOptions, grace: float, ready_timeout: float, progress: Progress
    ) -> ReloadReport:
        """Build and push the image the files make now; Swarm's rolling update replaces one worker at a time."""
        started = time.monotonic()
        report = self.up(options, progress)
        image = self.services()["worker"].image
        self.wait_ready(report.credentials, ready_timeout, progress)
        return ReloadReport(
            image, built=report.built, replaced=report.started, replace_seconds=time.monotonic() - started
        )

    def keep_stopped(self, hostnames: Collection[str]) -> None:
        """Nothing to do, nor possible: a service keeps its replica count, so Swarm replaces a worker that shut
        down with a new task at once ('tcel scale' runs fewer)."""

    def logs(self, service: str | None, follow: bool, tail: int | None) -> Iterator[tuple[str, str]]:
        """`worker` means every worker, `worker-2` the worker in slot 2, `broker` the broker..."""
        return logs.lines(self.project, self.services(), service, follow, tail)

    def down(self, volumes: bool = False) -> DownReport:
        with project_lock(self.project, create=False), engine_errors():
            found = list(self.services().values())
            if not found:
                plain = [c.name for c in containers(self.client, self.project)]
                refuse_other_engine(self.project, "swarm", plain, command="down", volumes=volumes)
                if not self._in_swarm():
                    return DownReport(self.engine, [], [], [], [])
            return DownReport(
                engine=self.engine,
                containers=[],
                services=sorted(s.name for s in found),
                networks=up.remove_all(self.client, self.project, found),
                volumes=remove_volumes(self.client, self.project) if volumes else [],
                configs=state_copy.remove(self.client, self.project) if volumes else [],
            )
