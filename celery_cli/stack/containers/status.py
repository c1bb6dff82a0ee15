"""What `tcel status` shows of the plain-container stack: one row per container."""

from __future__ import annotations

from ..base import ServiceStatus
from .docker_api import Container


def rows(containers: list[Container]) -> list[ServiceStatus]:
    """One row per container, as the engine reports it; `ready` is left for the caller (None) while it runs."""
    return [
        ServiceStatus(
            service=c.service,
            name=c.name,
            hostname=c.hostname,
            state=c.status,
            ready=None if c.status == "running" else False,
            image=c.image,
            ports=c.ports,
            started_at=c.started_at,
            restarts=c.restarts,
        )
        for c in containers
    ]
