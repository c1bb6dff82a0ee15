"""What both engines share of docker-py, as docker-py's own `api/` is to its `models/`: connecting, turning
docker-py's exceptions into tcel's, the project's label filter, Docker's time stamps, and removing the
project's networks and volumes. The typed views of what Docker returns are each engine's (docker_api.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from ..errors import EngineUnreachable, TcelError
from ..names import LABEL_PROJECT
from ..settings import Project

if TYPE_CHECKING:
    import docker

T = TypeVar("T")


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client for the Docker engine DOCKER_HOST names, or one clear error saying where tcel looked."""
    import docker

    try:
        return docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise _unreachable(exc) from None


@contextmanager
def engine_errors(streaming: bool = False) -> Iterator[None]:
    """Report a connection lost to the Docker engine half-way through, or a request it refused, as one clear
    line. `streaming`: the block reads a stream from the engine (logs), which loses its connection as an OSError
    (a reset socket) or one of requests' errors (a chunked answer cut short)."""
    import docker
    import requests

    lost = (OSError, requests.exceptions.RequestException) if streaming else requests.exceptions.ConnectionError
    try:
        yield
    except docker.errors.APIError as exc:  # first: it is one of requests' errors too
        raise TcelError(f"the Docker engine refused: {exc.explanation or exc}", hint="see 'tcel status'") from None
    except lost as exc:
        raise _unreachable(exc) from None


def _unreachable(exc: Exception) -> EngineUnreachable:
    return EngineUnreachable(
        f"cannot reach the Docker engine at {engine_address()} ({type(exc).__name__})",
        hint="start Docker, or set DOCKER_HOST to an engine that runs",
    )


def project_filter(project: Project) -> dict[str, str]:
    return {"label": f"{LABEL_PROJECT}={project.name}"}


def docker_time(raw: str) -> datetime | None:
    """A time stamp as Docker writes it (RFC 3339, nanoseconds, `Z`); None for none or Go's zero time."""
    if not raw or raw.startswith("0001"):
        return None
    return datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00")


def remove_networks(client: docker.DockerClient, project: Project) -> list[str]:
    found = client.networks.list(filters=project_filter(project))
    for item in found:
        item.remove()
    return [str(item.name) for item in found]


def remove_volumes(client: docker.DockerClient, project: Project) -> list[str]:
    found = client.volumes.list(filters=project_filter(project))
    for item in found:
        item.remove(force=True)
    return [str(item.name) for item in found]


def parallel(action: Callable[[T], None], items: list[T]) -> None:
    """Run `action` on every item at once (the engine does the waiting); the first error is raised."""
    from concurrent.futures import ThreadPoolExecutor

    if len(items) <= 1:
        for item in items:
            action(item)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()
