"""Low-level Docker engine access: connecting, and turning docker-py's exceptions into tcel's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .errors import EngineUnreachable, TcelError

if TYPE_CHECKING:
    import docker


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names, or one clear error saying where tcel looked."""
    import docker

    try:
        return docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise _unreachable(exc) from None


@contextmanager
def engine_errors() -> Iterator[None]:
    """Report a connection lost to the engine half-way through, or a request it refused, as one clear line."""
    import docker
    import requests

    try:
        yield
    except requests.exceptions.ConnectionError as exc:
        raise _unreachable(exc) from None
    except docker.errors.APIError as exc:
        raise TcelError(f"the Docker engine refused: {exc.explanation or exc}", hint="see 'tcel status'") from None


def _unreachable(exc: Exception) -> EngineUnreachable:
    return EngineUnreachable(
        f"cannot reach the Docker engine at {engine_address()} ({type(exc).__name__})",
        hint="start Docker, or set DOCKER_HOST to an engine that runs",
    )
