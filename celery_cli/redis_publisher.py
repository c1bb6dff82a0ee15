"""Publishing task messages to a Redis broker through kombu's Redis transport, the producer path Celery's own
`send_task` takes: the same protocol-2 message as on RabbitMQ (task_message.py), published to the default
exchange with the queue's name as routing key and the queue declared once (kombu records its binding), so kombu
LPUSHes it onto the queue's list, or onto the list of its priority step (`celery\x06\x163`...).

Redis has no publisher confirms: LPUSH's reply is the broker's acknowledgement, read before the next message.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sized
from typing import TYPE_CHECKING, Any, Self

from . import task_message
from .broker_kind import transport_options
from .endpoints import Endpoints
from .errors import UsageError
from .publish_confirms import Confirms
from .publish_errors import ended

if TYPE_CHECKING:
    from kombu.connection import Connection
    from kombu.messaging import Producer

    from .task_call import TaskCall

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0  # a Redis that stops answering must not hang the CLI


def connection(broker_url: str) -> Connection:
    """A kombu connection to the Redis broker, with tcel's visibility timeout and every wait bounded."""
    from kombu.connection import Connection

    options: dict[str, Any] = {
        **transport_options(broker_url),
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "max_retries": 0,
    }
    return Connection(broker_url, connect_timeout=CONNECT_TIMEOUT, transport_options=options)


class RedisSender:
    """Tasks sent through one kombu connection to a Redis broker, each reported sent once Redis took it."""

    def __init__(self, endpoints: Endpoints, window: int = 0, window_bytes: int = 0) -> None:
        del window, window_bytes  # no confirms to wait for: each LPUSH is answered before the next
        self.endpoints = endpoints
        self._origin = f"gen{os.getpid()}@{socket.gethostname()}"
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[str] = set()

    def send(self, call: TaskCall, task_id: str) -> float:
        """Publish the task; return when it was sent, once Redis has it."""
        sent: list[float] = []
        self.send_many([(call, task_id)], lambda _, at: sent.append(at))
        return sent[0]

    def send_many(
        self, tasks: Iterable[tuple[TaskCall, str]], on_sent: Callable[[str, float], None], total: int | None = None
    ) -> int:
        """Publish every (call, task id), calling `on_sent(task id, sent at)` as Redis takes each; return how
        many were sent. Ends early with one error naming how many were sent and not (as on RabbitMQ)."""
        total = len(tasks) if isinstance(tasks, Sized) else total
        confirms = Confirms()
        written = confirmed = 0
        name = ""
        try:
            for call, task_id in tasks:
                name = call.name
                body, headers, properties, at = task_message.parts(call, task_id, self._origin)
                producer = self._ready()  # connected before the message counts as written
                confirms.published(task_id, at, len(body))
                written += 1
                self._publish(producer, call.queue, body, headers, properties)
                for settled_id, settled_at in confirms.settle(confirms.next_tag - 1, False, True):
                    confirmed += 1
                    on_sent(settled_id, settled_at)
        except UsageError:
            raise
        except Exception as exc:
            if not _broker_error(exc):
                raise
            self.close()
            unsent = _unsent(total, written)
            raise ended(self.endpoints.broker_url, confirms, None, name, exc, confirmed, unsent) from None
        return confirmed

    def _publish(
        self, producer: Producer, queue: str, body: bytes, headers: dict[str, Any], properties: dict[str, Any]
    ) -> None:
        from kombu.entity import Exchange, Queue

        declare = [] if queue in self._declared else [Queue(queue, Exchange(queue, "direct"), routing_key=queue)]
        producer.publish(body, exchange="", routing_key=queue, headers=headers, declare=declare, **properties)
        self._declared.add(queue)

    def _ready(self) -> Producer:
        if self._producer is None:
            self._connection = connection(self.endpoints.broker_url)
            self._producer = self._connection.Producer()
        return self._producer

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception as exc:
                if not _broker_error(exc):
                    raise
        self._connection = self._producer = None
        self._declared.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _unsent(total: int | None, written: int) -> int | None:
    return None if total is None else total - written


def _broker_error(exc: Exception) -> bool:
    """What redis-py and kombu raise when the Redis broker cannot be reached, refuses or fails a command."""
    import kombu.exceptions
    import redis

    return isinstance(exc, (OSError, redis.exceptions.RedisError, kombu.exceptions.KombuError))
