"""The broker's queues, read from RabbitMQ's management API (the only source of unacknowledged counts)."""

from __future__ import annotations

from dataclasses import dataclass

from .connection import Connection
from .errors import ServiceUnreachable

INTERNAL = ("pidbox", "celeryev")  # Celery's control and event queues, not task queues


@dataclass
class QueueInfo:
    name: str
    ready: int
    unacked: int
    consumers: int


def queues(connection: Connection, timeout: float = 0.5) -> list[QueueInfo]:
    """The task queues on the default vhost with their message and consumer counts."""
    import base64
    import json
    import urllib.request

    where = f"{connection.host}:{connection.broker_admin_port}"
    url = f"http://{where}/api/queues/%2F?columns=name,messages_ready,messages_unacknowledged,consumers"
    token = base64.b64encode(f"{connection.broker_user}:{connection.broker_password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            rows = json.load(response)
    except (OSError, ValueError) as exc:
        raise ServiceUnreachable(f"the broker's management API at {where} does not answer ({exc})") from None
    return [
        QueueInfo(
            name=row["name"],
            ready=row.get("messages_ready", 0),
            unacked=row.get("messages_unacknowledged", 0),
            consumers=row.get("consumers", 0),
        )
        for row in rows
        if not any(word in row["name"] for word in INTERNAL)
    ]
