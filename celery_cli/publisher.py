"""Publishing task messages to the broker by name, as Celery's message protocol 2, with publisher confirms.

Celery's own `send_task` would do the same, but importing Celery costs about 100 ms, more than the rest of a
`tcel tsum --wait` round trip; py-amqp (which Celery itself uses underneath) costs a fraction of that. The
message is what `celery.app.amqp.AMQP.as_task_v2` builds, published the way Celery 5 publishes to a queue
(declared durable, bound to a direct exchange of its name; sent through the default exchange with the queue's
name as routing key), so any Celery worker runs it and any Celery client reads its result.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .credentials import mask_url
from .endpoints import Endpoints
from .errors import ServiceUnreachable, TcelError, UsageError
from .names import MAX_MESSAGE_SIZE

if TYPE_CHECKING:
    import amqp

    from .call import TaskCall

CONNECT_TIMEOUT = 2.0
CONFIRM_TIMEOUT = 5.0  # a broker that blocks publishers (memory or disk alarm) must not hang the CLI
RETRY_DELAYS = (0.2, 0.5)  # Celery retries a publish for a long time by default; a CLI answers within seconds
ARGSREPR_MAX = 1024


def check_size(name: str, size: int) -> None:
    """Refuse, before sending, a message over the largest the broker takes (tcel writes that limit into the
    broker's configuration; it is also RabbitMQ 4's default)."""
    if size > MAX_MESSAGE_SIZE:
        raise UsageError(
            f"{name} was not sent: its message is {size / 2**20:.1f} MiB, over the broker's limit of "
            f"{MAX_MESSAGE_SIZE / 2**20:.0f} MiB",
            hint="pass large data by reference (a file or URL the workers can read), or split it into tasks",
        )


def new_task_id() -> str:
    return str(uuid.uuid4())


def bounded_repr(value: Any, limit: int = ARGSREPR_MAX) -> str:
    """The `argsrepr`/`kwargsrepr` a worker logs and shows: `repr(value)` when it fits `limit`, else its
    start and "...". Built item by item up to the limit, so megabytes of arguments are never turned into
    one string (Celery's saferepr bounds it too, but importing it costs more than tcel's whole send)."""
    text = _repr_prefix(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _repr_prefix(value: Any, budget: int) -> str:
    """`repr(value)`, or a prefix of it at least `budget` characters long."""
    if type(value) in (list, tuple, dict) and value:
        items = value.items() if isinstance(value, dict) else value
        opening, closing = {list: "[]", tuple: "()", dict: "{}"}[type(value)]
        text = opening
        for index, item in enumerate(items):
            if len(text) >= budget:
                return text
            part = (
                _repr_prefix(item[0], budget) + ": " + _repr_prefix(item[1], budget - len(text))
                if isinstance(value, dict) else _repr_prefix(item, budget - len(text))
            )
            text += (", " if index else "") + part
        return text + ("," if type(value) is tuple and len(value) == 1 else "") + closing
    if isinstance(value, str) and len(value) > budget:
        return repr(value[:budget])[:-1]  # the opening quote Python would pick may differ: shown only cut
    return repr(value)


class Sender:
    """One broker connection and channel, kept for every task sent through it."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._channel: amqp.Channel | None = None
        self._connection: amqp.Connection | None = None
        self._declared: set[str] = set()
        self._blocked: str | None = None  # why the broker blocks this connection's publishes, while it does
        self._origin = f"gen{os.getpid()}@{socket.gethostname()}"

    def send(self, call: TaskCall, task_id: str) -> float:
        """Publish the task; return when it was sent, once the broker has confirmed it."""
        import amqp

        body = json.dumps([call.args, call.kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
        check_size(call.name, len(body.encode()))
        sent = time.time()
        properties: dict[str, Any] = {"priority": call.priority} if call.priority is not None else {}
        message = amqp.Message(
            body,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,  # persistent: survives a broker restart
            correlation_id=task_id,
            reply_to="",
            application_headers=self._headers(call, task_id, sent),
            **properties,
        )
        for delay in (*RETRY_DELAYS, None):
            try:
                channel = self._declare(self._open(), call.queue)
                break
            except (OSError, amqp.exceptions.AMQPError) as exc:  # nothing was sent yet: try again, briefly
                self.close()
                if isinstance(exc, amqp.exceptions.AccessRefused) or delay is None:
                    raise self._not_sent(call.name, exc) from None
                time.sleep(delay)
        try:
            channel.basic_publish(message, exchange="", routing_key=call.queue, confirm_timeout=CONFIRM_TIMEOUT)
            return sent
        except (OSError, amqp.exceptions.AMQPError, amqp.exceptions.MessageNacked) as exc:
            blocked = self._blocked
            if blocked is not None or isinstance(exc, OSError):  # the broker may not be reading any more
                self.drop()
            else:
                self.close()
            if blocked is not None:
                raise self._blocking(call.name, task_id, blocked) from None
            if isinstance(exc, amqp.exceptions.PreconditionFailed):  # refused as it is: sending again won't help
                raise TcelError(f"the broker at {mask_url(self.endpoints.broker_url)} refused {call.name}: {exc}") from None
            if isinstance(exc, amqp.exceptions.MessageNacked):
                raise self._not_sent(call.name, exc) from None
            # written, but not confirmed: publishing again could make it run twice
            raise ServiceUnreachable(
                f"{call.name} {task_id} went to the broker at {mask_url(self.endpoints.broker_url)} but was not "
                f"confirmed ({exc or type(exc).__name__}): it may or may not be queued",
                hint=f"see 'tcel result {task_id}' before sending it again",
            ) from None

    def _headers(self, call: TaskCall, task_id: str, sent: float) -> dict[str, Any]:
        now = datetime.fromtimestamp(sent, timezone.utc)
        eta = now + timedelta(seconds=call.countdown) if call.countdown else call.eta
        expires = now + timedelta(seconds=call.expires) if isinstance(call.expires, (int, float)) else call.expires
        return {
            "lang": "py",
            "task": call.name,
            "id": task_id,
            "shadow": None,
            "eta": eta.isoformat() if eta else None,
            "expires": expires.isoformat() if expires else None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": bounded_repr(call.args),
            "kwargsrepr": bounded_repr(call.kwargs),
            "origin": self._origin,
            "ignore_result": None,  # as Celery sends it: the task's own ignore_result decides
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        }

    def _declare(self, channel: amqp.Channel, queue: str) -> amqp.Channel:
        """Make sure the queue exists, once per connection, so that a task sent before any worker ran is kept.

        An existing queue is left as its consumers declared it (declaring it again with other arguments, such
        as a worker's x-max-priority, would be refused); a missing one is declared as Celery does.
        """
        import amqp

        if queue in self._declared:
            return channel
        try:
            channel.queue_declare(queue, passive=True)
        except amqp.exceptions.NotFound:
            channel = self._channel = self._connection.channel()  # the broker closed the one that asked
            channel.exchange_declare(queue, "direct", durable=True, auto_delete=False)
            channel.queue_declare(queue, durable=True, auto_delete=False)
            channel.queue_bind(queue, queue, queue)
        self._declared.add(queue)
        return channel

    def _open(self) -> amqp.Channel:
        """Connect, with publisher confirms."""
        if self._channel is not None:
            return self._channel
        import amqp

        parts = urlsplit(self.endpoints.broker_url)
        if parts.scheme not in ("amqp", "amqps", "pyamqp"):
            raise UsageError(f"unsupported broker URL scheme {parts.scheme!r}", hint="use an amqp:// URL")
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        try:
            port = parts.port or 5672
        except ValueError:
            raise UsageError(f"invalid port in broker URL {mask_url(self.endpoints.broker_url)}") from None
        self._connection = amqp.Connection(
            host=f"{parts.hostname or 'localhost'}:{port}",
            userid=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            virtual_host=vhost,
            ssl=parts.scheme == "amqps",
            connect_timeout=CONNECT_TIMEOUT,
            confirm_publish=True,  # "sent" means the broker has the message
            on_blocked=self._on_blocked,
            on_unblocked=self._on_unblocked,
        )
        self._connection.connect()
        self._channel = self._connection.channel()
        return self._channel

    def _blocking(self, name: str, task_id: str, reason: str) -> ServiceUnreachable:
        """The broker blocked this connection (a memory or disk alarm) and did not confirm within the timeout."""
        return ServiceUnreachable(
            f"{name} {task_id} was not confirmed within {CONFIRM_TIMEOUT:g}s: the broker at "
            f"{mask_url(self.endpoints.broker_url)} is blocking publishers ({reason}), so it may or may not be queued",
            hint=f"the broker is short of memory or disk ('tcel logs broker' says which); once it is not, see "
            f"'tcel result {task_id}' before sending it again",
        )

    def _not_sent(self, name: str, exc: Exception) -> ServiceUnreachable:
        return ServiceUnreachable(
            f"{name} was not sent: the broker at {mask_url(self.endpoints.broker_url)} did not take it "
            f"({exc or type(exc).__name__})",
            hint="start the stack with 'tcel up', or check --broker-url",
        )

    def _on_blocked(self, reason: str | None) -> None:
        self._blocked = reason or "no reason given"

    def _on_unblocked(self) -> None:
        self._blocked = None

    def drop(self) -> None:
        """Forget the connection without a goodbye: after a publish went wrong, the broker may have stopped
        reading (it does so to block publishers) and would never answer a close."""
        if self._connection is not None:
            self._connection.collect()
        self._forget()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - a connection already broken needs no goodbye
                self._connection.collect()
        self._forget()

    def _forget(self) -> None:
        self._connection = self._channel = None
        self._blocked = None
        self._declared.clear()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
