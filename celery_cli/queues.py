"""The broker's task queues: messages ready and consumers, asked of RabbitMQ over AMQP."""

from __future__ import annotations

from dataclasses import dataclass

from .credentials import Credentials
from .errors import unreachable
from .names import QUEUE
from .probes import amqp_client, close_quietly

TASK_QUEUES = (QUEUE,)


@dataclass
class QueueInfo:
    name: str
    ready: int
    consumers: int
    unacked: int | None = None  # held by workers; filled in from what they report


def queues(credentials: Credentials, timeout: float = 0.5) -> list[QueueInfo]:
    """Each task queue that exists, with its ready messages and consumers (a passive declare per queue)."""
    import amqp

    where = f"{credentials.host}:{credentials.broker_port}"
    client = amqp_client(credentials, timeout)
    found = []
    try:
        client.connect()
        for name in TASK_QUEUES:
            channel = client.channel()
            try:
                _, ready, consumers = channel.queue_declare(name, passive=True)
            except amqp.exceptions.NotFound:
                continue  # nothing was ever sent, and no worker has declared it yet
            found.append(QueueInfo(name, ready, consumers))
            channel.close()
    except (OSError, amqp.exceptions.AMQPError) as exc:
        raise unreachable("broker", where, exc) from None
    finally:
        close_quietly(client)
    return found
