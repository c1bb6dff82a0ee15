"""The broker's task queues: messages ready and consumers, asked of RabbitMQ over AMQP (of a Redis broker,
redis_queues.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .credentials import Credentials
from .errors import unreachable
from .probes import amqp_client, close_quietly


@dataclass
class QueueInfo:
    name: str
    ready: int
    consumers: int | None  # None: the broker does not know (Redis)
    unacked: int | None = None  # held by workers; filled in from what they report (Redis: from its unacked hash)
    visibility_timeout: int | None = None  # Redis: seconds after which an unacked message goes back to its queue


def queues(credentials: Credentials, names: list[str], timeout: float = 0.5) -> list[QueueInfo]:
    """Each of the named queues that exists, with its ready messages and consumers (a passive declare each)."""
    import amqp

    if credentials.broker == "redis":  # consumers are not known to Redis
        from .broker_kind import visibility_timeout
        from .redis_queues import redis_queues

        timeout_s = visibility_timeout()
        return [
            QueueInfo(n, ready, None, held, timeout_s) for n, ready, held in redis_queues(credentials, names, timeout)
        ]

    where = f"{credentials.host}:{credentials.broker_port}"
    client = amqp_client(credentials, timeout)
    found = []
    try:
        client.connect()
        for name in names:
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
