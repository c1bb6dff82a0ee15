"""Waiting until the Swarm stack works (see stack/readiness.py): once Swarm has placed the workers of the
service's current image and settings; and failing at once when a service's tasks keep failing on a node."""

from __future__ import annotations

import time
from collections import Counter

from ...credentials import Credentials
from ...errors import NotRunning
from ...output import Progress
from ...remote_control import worker_node
from ..docker_client import engine_errors
from ..readiness import Ready, wait_until_answering
from . import docker_api
from .docker_api import Service

FAILURES_BEFORE_GIVING_UP = 3


def wait_ready(found: dict[str, Service], credentials: Credentials, timeout: float, progress: Progress) -> Ready:
    """Wait until Swarm has placed the workers, then until every service answers."""
    since, started = time.time(), time.monotonic()
    nodes = worker_nodes(found.get("worker"), since + timeout, progress)
    placed = time.monotonic() - started

    def check(_pending: set[str], _broker_answered: float | None) -> None:
        for kind, service in found.items():
            check_tasks(kind, service, since)

    answered = wait_until_answering(
        credentials,
        nodes,
        check,
        timeout - placed,
        progress,
        flower="flower" in found,
        beat="beat" in found,
        metrics="metrics" in found,
    )
    return Ready(placed + answered, frozenset(nodes))


def worker_nodes(worker: Service | None, deadline: float, progress: Progress) -> set[str]:
    """The Celery node names of the worker service's replicas, once Swarm runs as many tasks as replicas, all
    of the service's current image and settings, and no task it is replacing still runs (so that an old
    worker does not answer for its slot during a rolling update). A scale-down may keep any slots (worker-1
    and worker-3 of 4); a scale-up fills others."""
    if worker is None:
        return set()
    while True:
        with engine_errors():
            tasks = worker.tasks()
        wanted = [t for t in tasks if t.desired_state == "running"]
        replacing = [t for t in tasks if t.desired_state != "running" and t.state == "running"]
        if (
            len(wanted) == worker.replicas and not replacing and all(worker.runs_spec(t) for t in wanted)
        ) or time.time() > deadline:
            return {worker_node(f"worker-{t.slot}") for t in wanted}
        progress(f"waiting for Swarm to place {worker.replicas} workers of {worker.image}")
        time.sleep(0.2)


def check_tasks(kind: str, service: Service, since: float) -> None:
    """Fail when the service's tasks keep failing on a node (an image it cannot pull, a container that exits at
    once). One failure here and there is Swarm's to retry (a pull that raced another on the same node)."""
    with engine_errors():
        errors = failures_since(service, since)
    node, count = max(Counter(node for node, _ in errors).items(), key=lambda item: item[1], default=("", 0))
    if count >= FAILURES_BEFORE_GIVING_UP:
        last = next(error for where, error in errors if where == node)
        with engine_errors():
            name = docker_api.node_names(service.raw.client).get(node, node)
        raise NotRunning(
            f"{service.name}: {count} tasks failed on node {name}, the last: {last}",
            hint=f"see 'tcel logs {kind}' and 'docker service ps {service.name}'",
        )


def failures_since(service: Service, since: float) -> list[tuple[str, str]]:
    """The node id and error of each of the service's tasks that failed or were rejected since `since` (epoch
    seconds)."""
    return [
        (task.node_id, task.error)
        for task in service.tasks()
        if task.state in ("failed", "rejected") and task.timestamp is not None and task.timestamp.timestamp() >= since
    ]
