"""The stack's workers as commands see them: which ones a command addresses (the running worker containers
of the project's stack, so that a broadcast returns as soon as those have answered; or whoever listens, when
the broker was given by URL), and asking or telling them something through Celery's remote control."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .endpoints import Target
from .errors import EngineUnreachable, NotRunning, UsageError
from .remote_control import Answers, Control, answers, worker_node
from .stack.base import ServiceStatus

CHANGES_QUEUES = ("add_consumer", "cancel_consumer")


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


def inspect(target: Target, method: str, worker: str | None, timeout: float, *args: Any) -> Answers:
    """`inspect METHOD` of the addressed workers; secrets in their settings masked."""
    nodes = addressed(target, worker)
    with Control(target.url("broker")) as control:
        found = answers(control.inspect(method, nodes, timeout, *args), nodes)
    if method == "conf":
        found.replies = _masked(found.replies)
    if not found.replies and nodes is None:
        raise NotRunning("no worker answered", hint="start the workers with 'tcel up', or check --broker-url")
    return found


def control(target: Target, command: str, worker: str | None, timeout: float, **arguments: Any) -> Answers:
    """Send a control command (rate_limit, pool_grow, add_consumer...) to the addressed workers."""
    from . import task_registry

    nodes = addressed(target, worker)
    url = target.url("broker")
    with Control(url) as control:
        found = answers(control.command(command, nodes, timeout, **arguments), nodes)
    if command in CHANGES_QUEUES:
        task_registry.forget(url)  # what the workers consume has changed
    return found


def shutdown(target: Target, worker: str) -> Answers:
    """Shut one worker down; it counts as acknowledged once it no longer answers a ping. A worker of this
    directory's stack then stays down until `tcel up`, although its container would restart by itself."""
    from . import task_registry

    nodes = addressed(target, worker) or []
    url = target.url("broker")
    with Control(url) as control:
        stopped = control.shutdown(nodes)
    task_registry.forget(url)
    if stopped and not target.given("broker"):
        from .stack import open_stack

        open_stack(target.project).keep_stopped([node.partition("@")[2] for node in stopped])
    return Answers({node: {"ok": "stopped"} if node in stopped else {"error": "still answers pings"} for node in nodes})


def _masked(value: Any) -> Any:
    """Workers censor secrets in their settings; mask any URL password they left, to be sure."""
    from .credentials import mask_url

    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return mask_url(value) if isinstance(value, str) and "://" in value else value
