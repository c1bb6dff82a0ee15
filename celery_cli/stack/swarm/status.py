"""What `tcel status` shows of the Swarm stack: one row per task Swarm wants running, with its node and its
service's replica counts."""

from __future__ import annotations

from datetime import UTC, datetime

from ...names import SERVICES
from ..base import ServiceStatus
from ..ports import EVERY_INTERFACE
from .docker_api import Service, Task

_EPOCH = datetime.fromtimestamp(0, UTC)


def rows(
    found: dict[str, Service], nodes: dict[str, str], images_created: dict[str, datetime | None] | None = None
) -> list[ServiceStatus]:
    """Every task Swarm wants running of every service, services in the stack's order, tasks by slot; a
    service that has none gets a row of its last task. `images_created`: when each image (by name) was made."""
    shown: list[ServiceStatus] = []
    for kind, service in sorted(found.items(), key=lambda item: _order(item[0])):
        tasks = service.tasks(running=True)
        counts = replica_counts(service, tasks)
        if not tasks and service.replicated and service.replicas:
            # between restarts of a failing task Swarm wants none running: show its last one (failed...)
            tasks = sorted(service.tasks(), key=lambda t: t.timestamp or _EPOCH)[-1:]
        shown.extend(
            task_status(kind, service, task, nodes, counts, (images_created or {}).get(service.image))
            for task in sorted(tasks, key=lambda t: t.slot or 0)
        )
    return shown


def _order(kind: str) -> int:
    return SERVICES.index(kind) if kind in SERVICES else len(SERVICES)


def task_status(
    kind: str,
    service: Service,
    task: Task,
    nodes: dict[str, str],
    replicas: tuple[int, int],
    image_created: datetime | None = None,
) -> ServiceStatus:
    node = nodes.get(task.node_id, task.node_id)
    return ServiceStatus(
        service=kind,
        name=f"{service.name}.{task.slot}" if task.slot else f"{service.name}.{node}",
        hostname=f"worker-{task.slot}" if kind == "worker" else kind,
        state=task.state,
        # the registry's readiness is its task running; the stack's own services are probed by `status`
        ready=(task.state == "running")
        if kind.startswith("registry")
        else (None if task.state == "running" else False),
        image=service.image,
        ports=[
            f"{EVERY_INTERFACE}:{published}->{target}/{protocol}" for published, target, protocol in service.published
        ],
        started_at=task.started_at,
        node=node,
        replicas=replicas,
        image_created=image_created,
    )


def replica_counts(service: Service, tasks: list[Task]) -> tuple[int, int]:
    """How many of the service's tasks run, and how many it wants (a global service: one per node it has a
    task for)."""
    running = sum(1 for task in tasks if task.state == "running")
    return running, service.replicas if service.replicated else len(tasks)
