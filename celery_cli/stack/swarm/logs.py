"""Reading the Swarm stack's logs: each service's lines from every node, a worker's named by its slot
(`worker-2`), interleaved by time or followed as they come."""

from __future__ import annotations

from collections.abc import Iterator

from ...errors import NotRunning
from ...settings import Project
from ..docker_client import engine_errors
from ..log_merge import in_time_order, merged
from .docker_api import Service


def lines(
    project: Project, found: dict[str, Service], service: str | None, follow: bool, tail: int | None
) -> Iterator[tuple[str, str]]:
    """`worker` means every worker, `worker-2` the worker in slot 2, `broker` the broker..."""
    kind = service if service in found or service is None else service.rpartition("-")[0]
    chosen = [s for k, s in found.items() if service is None or k == kind]
    if not chosen:
        raise NotRunning(f"stack {project.name} has no {service!r} service", hint="see 'tcel status'")
    wanted = None if service in found else service
    read = _followed(chosen, tail) if follow else _interleaved(chosen, tail)
    return (line for line in read if wanted is None or line[0] == wanted)


def _service_lines(service: Service, tail: int | None, follow: bool) -> Iterator[tuple[str, str, str]]:
    """(time stamp, source, text) of each line of a service's log; a worker's source is `worker-<slot>`, found
    from the task id Swarm puts in each line's details."""
    kind = service.kind
    slots: dict[str, int] = {}
    pending = b""
    for chunk in service.log_chunks(tail, follow):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            stamp, _, text = line.decode(errors="replace").partition(" ")
            task = None
            if text.startswith("com.docker.swarm."):
                details, _, text = text.partition(" ")
                task = dict(item.partition("=")[::2] for item in details.split(",")).get("com.docker.swarm.task.id")
            if kind == "worker" and task and task not in slots:
                slots.update({t.id: t.slot or 0 for t in service.tasks()})
            yield stamp, f"{kind}-{slots[task]}" if kind == "worker" and task and slots.get(task) else kind, text


def _interleaved(services: list[Service], tail: int | None) -> Iterator[tuple[str, str]]:
    with engine_errors():
        return in_time_order(line for service in services for line in _service_lines(service, tail, follow=False))


def _followed(services: list[Service], tail: int | None) -> Iterator[tuple[str, str]]:
    return merged(
        [((source, text) for _, source, text in _service_lines(service, tail, follow=True)) for service in services]
    )
