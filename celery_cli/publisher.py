"""Publishing task messages to the broker by name, as Celery's message protocol 2, with publisher confirms.

Celery's own `send_task` would do the same, but importing Celery costs about 100 ms, more than the rest of a
`tcel tsum --wait` round trip; py-amqp (which Celery itself uses underneath) costs a fraction of that. The
message is what `celery.app.amqp.AMQP.as_task_v2` builds, published the way Celery 5 publishes to a queue
(declared durable, bound to a direct exchange of its name; sent through the default exchange with the queue's
name as routing key), so any Celery worker runs it and any Celery client reads its result.

Many tasks go out in a window of publisher confirms (`Sender.send_many`): messages are written ahead of their
confirms and the confirms read as they come, each task reported sent once the broker acked it. Celery and
kombu with `confirm_publish` wait for each confirm before the next publish.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Sized
from typing import TYPE_CHECKING

from . import task_message
from .endpoints import Endpoints
from .errors import TcelError, UsageError
from .names import MAX_MESSAGE_SIZE
from .publish_confirms import ConfirmChannel
from .publish_errors import ended

if TYPE_CHECKING:
    import amqp

    from .redis_publisher import RedisSender
    from .task_call import TaskCall

RETRY_DELAYS = (0.2, 0.5)  # Celery retries a publish for a long time by default; a CLI answers within seconds
WINDOW = 1000  # messages written before their confirms come back; past this, wait for some
WINDOW_BYTES = 2 * MAX_MESSAGE_SIZE  # and their bytes, so big messages keep fewer in flight


def Sender(endpoints: Endpoints, window: int = WINDOW, window_bytes: int = WINDOW_BYTES) -> AmqpSender | RedisSender:
    """The sender for the endpoints' broker: kombu's Redis transport for a Redis broker, else py-amqp's (named as
    the class it stood for: every caller writes `with Sender(endpoints) as sender`)."""
    from .broker_kind import is_redis

    if is_redis(endpoints.broker_url):
        from .redis_publisher import RedisSender

        return RedisSender(endpoints, window, window_bytes)
    return AmqpSender(endpoints, window, window_bytes)


class AmqpSender(ConfirmChannel):
    """Tasks sent through one broker connection and channel in confirm mode, kept for every task sent.

    Tasks go out in a window: up to `window` messages (and `window_bytes`) written before their confirms come
    back, the confirms read as they arrive. A task is reported sent only once the broker confirmed it; nothing
    written is ever published again, since it could then run twice.
    """

    def __init__(self, endpoints: Endpoints, window: int = WINDOW, window_bytes: int = WINDOW_BYTES) -> None:
        super().__init__(endpoints)
        self.window = window
        self.window_bytes = window_bytes
        self._origin = f"gen{os.getpid()}@{socket.gethostname()}"

    def send(self, call: TaskCall, task_id: str) -> float:
        """Publish the task; return when it was sent, once the broker has confirmed it."""
        sent: list[float] = []
        self.send_many([(call, task_id)], lambda _, at: sent.append(at))
        return sent[0]

    def send_many(
        self, tasks: Iterable[tuple[TaskCall, str]], on_sent: Callable[[str, float], None], total: int | None = None
    ) -> int:
        """Publish every (call, task id) in a window, calling `on_sent(task id, sent at)` as the broker confirms
        each; return how many were sent. `tasks` is read lazily, so a generator's memory stays bounded by the
        window (give its length as `total` when known). Ends early with one error naming how many were
        confirmed, refused, left unsettled and not sent (NotAllSent when there were several)."""
        import amqp

        confirmed = written = 0
        total = len(tasks) if isinstance(tasks, Sized) else total

        def sent(task_id: str, at: float) -> None:
            nonlocal confirmed
            confirmed += 1
            on_sent(task_id, at)

        name = ""
        try:
            for call, task_id in tasks:
                name = call.name
                try:
                    message, at, size = task_message.message(call, task_id, self._origin)
                except UsageError:  # too big: settle what is in flight, then say so
                    while self._confirms.pending:
                        self._wait_for_confirms(sent)
                    raise
                channel = self._ready(call, sent)
                self._make_room(size, sent)
                if self._confirms.refused:  # the broker refuses: stop here, settle what is in flight
                    break
                self._confirms.published(task_id, at, size)
                written += 1
                self._cork(True)
                channel.basic_publish(message, exchange="", routing_key=call.queue, mandatory=True)
                if written % 64 == 0:
                    self._read_confirms(sent)
            while self._confirms.pending:
                self._wait_for_confirms(sent)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            self._report(sent)
            error = self._ended(name, exc, confirmed, None if total is None else total - written)
            self.close()
            raise error from None
        if self._confirms.refused:
            error = self._ended(name, None, confirmed, None if total is None else total - written)
            self._confirms.refused.clear()
            raise error
        return confirmed

    def _ready(self, call: TaskCall, on_sent: Callable[[str, float], None]) -> amqp.Channel:
        """The channel, with the call's queue declared; connecting again, briefly, only while nothing is in
        flight (a retry then cannot send anything twice)."""
        import amqp

        if self._channel is not None and call.queue in self._declared:
            return self._channel
        while self._confirms.pending:  # a passive declare of a missing queue closes the channel: settle first
            self._wait_for_confirms(on_sent)
        for delay in (*RETRY_DELAYS, None):
            try:
                return self._declare(self._open(), call.queue)
            except (OSError, amqp.exceptions.AMQPError) as exc:
                if isinstance(exc, amqp.exceptions.AccessRefused) or delay is None:
                    raise
                self.close()
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _make_room(self, size: int, on_sent: Callable[[str, float], None]) -> None:
        """When one more message of `size` bytes does not fit in the window, wait for confirms until it is half
        empty: the next messages then go out as one corked burst, not one segment and one wait each."""
        confirms = self._confirms
        if len(confirms.pending) < self.window and confirms.bytes + size <= self.window_bytes:
            return
        while confirms.pending and (
            len(confirms.pending) > self.window // 2 or confirms.bytes + size > self.window_bytes // 2
        ):
            self._wait_for_confirms(on_sent)

    def _ended(self, name: str, exc: Exception | None, confirmed: int, unsent: int | None) -> TcelError:
        return ended(self.endpoints.broker_url, self._confirms, self._blocked, name, exc, confirmed, unsent)
