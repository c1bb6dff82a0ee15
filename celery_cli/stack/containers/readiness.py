"""Waiting until the plain-container stack works (see stack/readiness.py), and failing at once, with the
container's last log line, when a service exits meanwhile or a worker cannot stay connected to the broker."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ...credentials import Credentials
from ...errors import NotRunning, ServiceUnreachable
from ...output import Progress
from ...remote_control import worker_node
from ...settings import Project
from ..docker_client import engine_errors
from ..readiness import BROKER_GRACE, BROKER_TROUBLE, Ready, source_line, wait_until_answering
from .docker_api import Container


def wait_ready(
    project: Project, containers: list[Container], access: Credentials, timeout: float, progress: Progress
) -> Ready:
    """Wait until the broker takes a login, the backend a PING, every worker a ping, Flower (if the stack has
    it) lists every worker and the beat (if it has one) ticks."""
    workers = {worker_node(c.hostname): c for c in containers if c.service == "worker"}
    restarts: dict[str, int] = {}

    def check(pending_workers: set[str], broker_answered: float | None) -> None:
        check_alive(project, containers, restarts)
        if broker_answered and time.time() - broker_answered > BROKER_GRACE:
            check_connected([workers[node] for node in pending_workers], broker_answered)

    services = {c.service for c in containers}
    seconds = wait_until_answering(
        access,
        set(workers),
        check,
        timeout,
        progress,
        flower="flower" in services,
        beat="beat" in services,
        metrics="metrics" in services,
    )
    return Ready(seconds, frozenset(workers))


def check_alive(project: Project, containers: Iterable[Container], restarts: dict[str, int]) -> None:
    """Fail at once, with the container's last log line, when a service exits while we wait: it stays
    stopped, or its restart policy restarted it since it was first seen running (`restarts`, filled here: one
    that was coming back when the wait began, as after a kill, is not counted against it)."""
    with engine_errors():
        for c in containers:
            c.reload()
            if c.status == "running":
                restarts.setdefault(c.name, c.restarts)
            if c.status in ("exited", "dead") or c.restarts > restarts.get(c.name, c.restarts):
                tail = c.log_text(tail=40).strip().splitlines()
                code = c.exit_code
                where = source_line(project, tail)
                raise NotRunning(
                    f"{c.name} exited with code {code}"
                    + (f": {tail[-1].strip()}" if tail else "")
                    + (f" ({where})" if where else ""),
                    hint=f"see 'tcel logs {c.hostname}'; fix the cause, then run 'tcel up' again",
                )


def check_connected(workers: list[Container], since: float) -> None:
    """Fail at once, with the worker's own error line, when a worker keeps failing to use the broker."""
    with engine_errors():
        for c in workers:
            lines = c.log_text(since=since, tail=50).splitlines()
            trouble = [line.strip() for line in lines if BROKER_TROUBLE.search(line)]
            if trouble:
                raise ServiceUnreachable(
                    f"{c.name} cannot stay connected to the broker: {trouble[-1]}",
                    hint=f"see 'tcel logs {c.hostname}' and 'tcel logs broker'",
                )
