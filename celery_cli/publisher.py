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

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sized
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .credentials import mask_url
from .endpoints import Endpoints
from .errors import ExitCode, ServiceUnreachable, TcelError, UsageError
from .names import MAX_MESSAGE_SIZE

if TYPE_CHECKING:
    import amqp

    from .task_call import TaskCall

CONNECT_TIMEOUT = 2.0
CONFIRM_TIMEOUT = 5.0  # a broker that blocks publishers (memory or disk alarm) must not hang the CLI
CLOSE_TIMEOUT = 1.0
RETRY_DELAYS = (0.2, 0.5)  # Celery retries a publish for a long time by default; a CLI answers within seconds
ARGSREPR_MAX = 1024
WINDOW = 1000  # messages written before their confirms come back; past this, wait for some
WINDOW_BYTES = 2 * MAX_MESSAGE_SIZE  # and their bytes, so big messages keep fewer in flight
CORK = getattr(socket, "TCP_CORK", None)


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


def bounded_repr(value: Any, limit: int = ARGSREPR_MAX, small: bool = False) -> str:
    """The `argsrepr`/`kwargsrepr` a worker logs and shows: `repr(value)` when it fits `limit`, else its
    start and "...". Built item by item up to the limit, so megabytes of arguments are never turned into
    one string (Celery's saferepr bounds it too, but importing it costs more than tcel's whole send).
    `small` says the value is known to be short (its JSON fits `limit`; the repr of a value read from JSON is
    about as long as its JSON): it is then taken whole by `repr`, which is ten times faster for a few numbers."""
    text = repr(value) if small else _repr_prefix(value, limit + 1)
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
                if isinstance(value, dict)
                else _repr_prefix(item, budget - len(text))
            )
            text += (", " if index else "") + part
        return text + ("," if type(value) is tuple and len(value) == 1 else "") + closing
    if isinstance(value, str) and len(value) > budget:
        return repr(value[:budget])[:-1]  # the opening quote Python would pick may differ: shown only cut
    return repr(value)


class Confirms:
    """Publisher-confirm bookkeeping for one channel in confirm mode.

    The broker numbers the messages published on a channel after `confirm.select` 1, 2, 3...; a `basic.ack`
    or `basic.nack` settles the one with its delivery tag, or with `multiple` every one up to it. A message
    the broker returned (unroutable, with `mandatory`) is acked after its return: it counts as refused.
    """

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, tuple[str, float, int]] = {}  # tag -> (task id, sent at, size), in tag order
        self.bytes = 0
        self.refused: list[str] = []
        self.returned: set[str] = set()

    def published(self, task_id: str, sent: float, size: int) -> None:
        self.pending[self.next_tag] = (task_id, sent, size)
        self.next_tag += 1
        self.bytes += size

    def settle(self, tag: int, multiple: bool, acked: bool) -> list[tuple[str, float]]:
        """Settle what an ack (`acked`) or a nack covers; return the (task id, sent at) the broker now has."""
        tags = list(takewhile(lambda t: t <= tag, self.pending)) if multiple else [tag] * (tag in self.pending)
        taken = []
        for settled in tags:
            task_id, sent, size = self.pending.pop(settled)
            self.bytes -= size
            if acked and task_id not in self.returned:
                taken.append((task_id, sent))
            else:
                self.refused.append(task_id)
                self.returned.discard(task_id)
        return taken

    @property
    def unconfirmed(self) -> list[str]:
        """Written to the broker, not settled: each may or may not be queued."""
        return [task_id for task_id, _, _ in self.pending.values()]


class NotAllSent(TcelError):
    """A send of several tasks that ended early, with what became of them: how many the broker confirmed, the
    ids it refused and those written but never settled (each may or may not be queued), how many were never
    written (None: the rest of a stream)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        exit_code: ExitCode,
        confirmed: int,
        refused: list[str],
        unconfirmed: list[str],
        unsent: int | None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
        self.confirmed = confirmed
        self.refused = refused
        self.unconfirmed = unconfirmed
        self.unsent = unsent


class Sender:
    """One broker connection and channel in confirm mode, kept for every task sent through it.

    Tasks go out in a window: up to `window` messages (and `window_bytes`) written before their confirms come
    back, the confirms read as they arrive. A task is reported sent only once the broker confirmed it; nothing
    written is ever published again, since it could then run twice.
    """

    def __init__(self, endpoints: Endpoints, window: int = WINDOW, window_bytes: int = WINDOW_BYTES) -> None:
        self.endpoints = endpoints
        self.window = window
        self.window_bytes = window_bytes
        self._channel: amqp.Channel | None = None
        self._connection: amqp.Connection | None = None
        self._confirms = Confirms()
        self._settled: list[tuple[str, float]] = []
        self._blocked: str | None = None  # the broker's reason, while it blocks publishers
        self._corked = False
        self._declared: set[str] = set()
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
                    message, at, size = self._message(call, task_id)
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

    def _message(self, call: TaskCall, task_id: str) -> tuple[amqp.Message, float, int]:
        import amqp

        body = json.dumps(
            [call.args, call.kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
        ).encode()
        size = len(body)
        check_size(call.name, size)
        sent = time.time()
        properties: dict[str, Any] = {"priority": call.priority} if call.priority is not None else {}
        message = amqp.Message(
            body,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,  # persistent: survives a broker restart
            correlation_id=task_id,
            reply_to="",
            application_headers=self._headers(call, task_id, sent, small=size <= ARGSREPR_MAX),
            **properties,
        )
        return message, sent, size

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

    def _wait_for_confirms(self, on_sent: Callable[[str, float], None]) -> None:
        """Block until the broker settles at least one more message; give up after CONFIRM_TIMEOUT without."""
        import amqp

        self._cork(False)
        waiting = len(self._confirms.pending)
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while len(self._confirms.pending) == waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                blocked = f"; the broker blocks publishers ({self._blocked})" if self._blocked else ""
                raise amqp.exceptions.RecoverableConnectionError(f"no confirm within {CONFIRM_TIMEOUT:g} s{blocked}")
            with contextlib.suppress(TimeoutError):
                self._connection.drain_events(timeout=left)
        self._report(on_sent)

    def _cork(self, on: bool) -> None:
        """While publishing, let the kernel gather messages into full segments (Linux's TCP_CORK) instead of
        one send each, which on a loaded machine cost more than building the message; uncorked (which sends
        what is gathered) before waiting for confirms."""
        if on != self._corked and CORK is not None:
            self._connection.transport.sock.setsockopt(socket.IPPROTO_TCP, CORK, on)
            self._corked = on

    def _read_confirms(self, on_sent: Callable[[str, float], None]) -> None:
        """Read the confirms that have already arrived, without waiting."""
        try:
            while True:
                self._connection.drain_events(timeout=0)
        except TimeoutError:
            pass
        self._report(on_sent)

    def _report(self, on_sent: Callable[[str, float], None]) -> None:
        settled, self._settled = self._settled, []
        for task_id, at in settled:
            on_sent(task_id, at)

    def _settle(self, acked: bool) -> Callable[[int, bool], None]:
        def settle(delivery_tag: int, multiple: bool) -> None:
            self._settled += self._confirms.settle(delivery_tag, multiple, acked)

        return settle

    def _returned(self, exc: Exception, exchange: str, routing_key: str, message: amqp.Message) -> None:
        self._confirms.returned.add(message.properties.get("correlation_id"))

    def _ended(self, name: str, exc: Exception | None, confirmed: int, unsent: int | None) -> TcelError:
        """The one line on how a send ended early: for a single task, what became of it; else the counts."""
        import amqp

        confirms, where = self._confirms, mask_url(self.endpoints.broker_url)
        if exc is None:
            cause = "the broker refused it"
        else:  # py-amqp's own text leads with a class and method id pair: its reply text says it plainly
            cause = getattr(exc, "reply_text", None) or str(exc) or type(exc).__name__
        if self._blocked is not None and "blocks publishers" not in cause:  # a write that timed out, say
            cause += f"; the broker blocks publishers ({self._blocked})"
        refused = exc is None or isinstance(exc, amqp.exceptions.PreconditionFailed)
        unsettled = confirms.unconfirmed
        if confirmed + len(confirms.refused) + len(unsettled) == 0 and not refused:
            return self._not_sent(name if unsent in (None, 1) else f"{unsent} x {name}", exc)
        if confirmed == 0 and len(confirms.refused) + len(unsettled) == 1 and unsent == 0:  # one task
            task_id = (confirms.refused or unsettled)[0]
            if unsettled and self._blocked is not None:
                return self._blocking(name, task_id, self._blocked)
            if confirms.refused or refused:
                return TcelError(f"the broker at {where} refused {name} {task_id}: {cause}; it is not queued")
            return ServiceUnreachable(
                f"{name} {task_id} went to the broker at {where} but was not confirmed ({cause}): it may or may "
                "not be queued",
                hint=f"see 'tcel result {task_id}' before sending it again",
            )
        parts = [f"{confirmed} confirmed"]
        if confirms.refused:
            parts.append(f"{len(confirms.refused)} refused (not queued)")
        if unsettled:
            parts.append(f"{len(unsettled)} written but not confirmed (may or may not be queued)")
        if unsent is None:
            parts.append("the rest not sent")
        elif unsent:
            parts.append(f"{unsent} not sent")
        return NotAllSent(
            f"sending {name} to the broker at {where} stopped ({cause}): {', '.join(parts)}",
            hint=("the broker is short of memory or disk ('tcel logs broker' says which); " if self._blocked else "")
            + "nothing was published twice; see 'tcel results' before sending any again",
            exit_code=ExitCode.FAILURE if refused else ExitCode.SERVICE_UNREACHABLE,
            confirmed=confirmed,
            refused=list(confirms.refused),
            unconfirmed=unsettled,
            unsent=unsent,
        )

    def _headers(self, call: TaskCall, task_id: str, sent: float, small: bool = False) -> dict[str, Any]:
        def later(seconds: float) -> datetime:
            return datetime.fromtimestamp(sent, UTC) + timedelta(seconds=seconds)

        eta = later(call.countdown) if call.countdown else call.eta
        expires = later(call.expires) if isinstance(call.expires, (int, float)) else call.expires
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
            "argsrepr": bounded_repr(call.args, small=small),
            "kwargsrepr": bounded_repr(call.kwargs, small=small),
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
            channel = self._new_channel()  # the broker closed the one that asked
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
            write_timeout=CONFIRM_TIMEOUT,  # a broker that stops reading (it blocks publishers) fails the write
            on_blocked=self._on_blocked,
            on_unblocked=self._on_unblocked,
        )
        self._connection.connect()
        return self._new_channel()

    def _new_channel(self) -> amqp.Channel:
        """A channel in confirm mode ("sent" means the broker has the message), its confirms and returns
        collected as they come."""
        self._confirms = Confirms()
        channel = self._channel = self._connection.channel()
        channel.events["basic_ack"].add(self._settle(acked=True))
        channel.events["basic_nack"].add(self._settle(acked=False))
        channel.events["basic_return"].add(self._returned)
        channel.confirm_select()
        return channel

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

    def close(self) -> None:
        if self._connection is not None:
            try:
                if self._connection.connected:  # a broker that blocks publishers never answers a close
                    self._connection.transport.sock.settimeout(CLOSE_TIMEOUT)
                self._connection.close()
            except Exception:
                self._connection.collect()
        self._forget()

    def _forget(self) -> None:
        self._connection = self._channel = None
        self._blocked = None
        self._declared.clear()
        self._confirms = Confirms()
        self._corked = False

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
