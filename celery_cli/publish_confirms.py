"""A broker connection with a channel in publisher-confirm mode, and the bookkeeping of its confirms: what the
publisher (publisher.py) writes to and reads the broker's acks, nacks and returns from."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from itertools import takewhile
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit

from .broker_tls import amqp_ssl, default_port
from .credentials import mask_url
from .endpoints import Endpoints
from .errors import UsageError

if TYPE_CHECKING:
    import amqp

CONNECT_TIMEOUT = 2.0
CONFIRM_TIMEOUT = 5.0  # a broker that blocks publishers (memory or disk alarm) must not hang the CLI
CLOSE_TIMEOUT = 1.0
CORK = getattr(socket, "TCP_CORK", None)


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


class ConfirmChannel:
    """One broker connection and a channel of it in confirm mode: queues declared once per connection, the
    broker's confirms and returns collected as they come (`settled`), whether it blocks publishers."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._channel: amqp.Channel | None = None
        self._connection: amqp.Connection | None = None
        self._confirms = Confirms()
        self._settled: list[tuple[str, float]] = []
        self._blocked: str | None = None  # the broker's reason, while it blocks publishers
        self._corked = False
        self._declared: set[str] = set()

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
                self._connected.drain_events(timeout=left)
        self._report(on_sent)

    def _cork(self, on: bool) -> None:
        """While publishing, let the kernel gather messages into full segments (Linux's TCP_CORK) instead of
        one send each, which on a loaded machine cost more than building the message; uncorked (which sends
        what is gathered) before waiting for confirms."""
        if on != self._corked and CORK is not None:
            self._connected.transport.sock.setsockopt(socket.IPPROTO_TCP, CORK, on)
            self._corked = on

    def _read_confirms(self, on_sent: Callable[[str, float], None]) -> None:
        """Read the confirms that have already arrived, without waiting."""
        try:
            while True:
                self._connected.drain_events(timeout=0)
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

        self._connection = amqp.Connection(
            **_connection_settings(self.endpoints.broker_url),
            connect_timeout=CONNECT_TIMEOUT,
            write_timeout=CONFIRM_TIMEOUT,  # a broker that stops reading (it blocks publishers) fails the write
            on_blocked=self._on_blocked,
            on_unblocked=self._on_unblocked,
        )
        self._connection.connect()
        return self._new_channel()

    @property
    def _connected(self) -> amqp.Connection:
        if self._connection is None:
            raise AssertionError("used before _open() connected")
        return self._connection

    def _new_channel(self) -> amqp.Channel:
        """A channel in confirm mode ("sent" means the broker has the message), its confirms and returns
        collected as they come."""
        self._confirms = Confirms()
        channel = self._channel = self._connected.channel()
        channel.events["basic_ack"].add(self._settle(acked=True))
        channel.events["basic_nack"].add(self._settle(acked=False))
        channel.events["basic_return"].add(self._returned)
        channel.confirm_select()
        return channel

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _connection_settings(broker_url: str) -> dict[str, Any]:
    """py-amqp's connection settings from an amqp:// URL."""
    parts = urlsplit(broker_url)
    if parts.scheme not in ("amqp", "amqps", "pyamqp"):
        raise UsageError(f"unsupported broker URL scheme {parts.scheme!r}", hint="use an amqp:// URL")
    try:
        port = parts.port or default_port(parts)
    except ValueError:
        raise UsageError(f"invalid port in broker URL {mask_url(broker_url)}") from None
    return {
        "host": f"{parts.hostname or 'localhost'}:{port}",
        "userid": unquote(parts.username or "guest"),
        "password": unquote(parts.password or "guest"),
        "virtual_host": unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
        "ssl": amqp_ssl(parts),
    }
