"""Which workers a command addresses: the running worker containers of the project's stack, so that a
broadcast returns as soon as those have answered; or whoever listens, when the broker was given by URL."""

from __future__ import annotations

from collections.abc import Iterable

from .endpoints import Target
from .errors import EngineUnreachable, NotRunning, UsageError
from .remote_control import worker_node
from .stack.base import ServiceStatus


def running_nodes(services: Iterable[ServiceStatus]) -> list[str]:
    return [worker_node(s.hostname) for s in services if s.service == "worker" and s.state == "running"]


def known_workers(target: Target) -> list[str] | None:
    """Node names of the stack's running workers; None (ask whoever answers) for a broker given by URL, or
    when the Docker engine cannot be asked."""
    if target.given("broker"):
        return None
    from .stack import open_stack

    try:
        return running_nodes(open_stack(target.project).status())
    except EngineUnreachable:
        return None


def addressed(target: Target, worker: str | None = None) -> list[str] | None:
    """The workers a command talks to: the one `--worker` names (it must be running), else all known ones.
    Raises when the stack has no running worker, rather than broadcasting to nobody in particular."""
    known = known_workers(target)
    if worker is not None:
        wanted = worker if "@" in worker else worker_node(worker)
        if known is not None and wanted not in known:
            running = ", ".join(sorted(known)) or "none"
            raise UsageError(f"no running worker {worker!r} in stack {target.project.name}", hint=f"running: {running}")
        return [wanted]
    if known == []:
        raise NotRunning(f"no worker of stack {target.project.name} is running", hint="start them with 'tcel up'")
    return known
