"""What `tcel status` shows of the plain-container stack: one row per container."""

from __future__ import annotations

from datetime import datetime

from ..base import ServiceStatus
from .docker_api import Container


def rows(containers: list[Container], images_created: dict[str, datetime | None]) -> list[ServiceStatus]:
    """One row per container, as the engine reports it; `ready` is left for the caller (None) while it runs;
    `images_created`: when each image (by id) was made."""
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
            image_created=images_created.get(c.image_id),
        )
        for c in containers
    ]
