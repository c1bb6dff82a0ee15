"""Celery's remote control, over one reused broker connection: ping, inspect, control commands, shutdown,
revoke, purge."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .credentials import mask_url
from .errors import ServiceUnreachable, start_or_check, unreachable

if TYPE_CHECKING:
    from celery import Celery
    from kombu.connection import Connection


@dataclass
class Answers:
    """What addressed workers said to an inspect or a control command, and who said nothing."""

    replies: dict[str, Any]  # node name -> its reply
    silent: list[str] = field(default_factory=list)  # addressed, but no answer within the timeout

    @property
    def acknowledged(self) -> dict[str, str]:
        """Control commands: the workers that did it, with what they said."""
        return {node: str(reply.get("ok", reply)) for node, reply in self.replies.items() if "error" not in reply}

    @property
    def refused(self) -> dict[str, str]:
        """Control commands: the workers that answered with an error, and the error."""
        return {node: str(reply["error"]) for node, reply in self.replies.items() if "error" in reply}


def answers(replies: dict[str, Any], addressed: list[str] | None) -> Answers:
    return Answers(replies, sorted(set(addressed or ()) - set(replies)))


def pool_size(stats: dict[str, Any]) -> int | None:
    """The processes a worker's pool has now (pool grow/shrink and autoscale change it), else its limit."""
    pool = stats.get("pool") or {}
    processes = pool.get("processes")
    return len(processes) if isinstance(processes, list) else pool.get("max-concurrency")


def peak_rss_kib(stats: dict[str, Any]) -> int | None:
    """The most memory the worker's main process has held (Celery's rusage maxrss: KiB on Linux); the pool's
    processes are not counted."""
    rusage = stats.get("rusage")
    maxrss = rusage.get("maxrss") if isinstance(rusage, dict) else None
    return maxrss if isinstance(maxrss, int) else None


def max_tasks_per_child(stats: dict[str, Any]) -> int | None:
    """After how many tasks a pool process is replaced, as the pool reports it (None: never, or no such pool)."""
    value = (stats.get("pool") or {}).get("max-tasks-per-child")
    return value if isinstance(value, int) else None


def worker_node(hostname: str) -> str:
    """The Celery node name of the worker running in the container with that host name."""
    return f"celery@{hostname}"


def _broker_errors() -> tuple[type[Exception], ...]:
    """What kombu, py-amqp and (for a Redis broker) redis-py raise when the broker cannot be reached or refuses
    the login."""
    import amqp
    import kombu.exceptions
    import redis

    return (OSError, kombu.exceptions.OperationalError, amqp.exceptions.AMQPError, redis.exceptions.RedisError)


class Control:
    """Broadcasts to workers; with a list of node names a call returns as soon as all of them answered."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url

    @cached_property
    def app(self) -> Celery:
        from celery import Celery

        from .broker_kind import transport_options
        from .broker_tls import tls_of

        app = Celery("tcel", broker=self.broker_url, set_as_current=False)
        app.conf.update(
            broker_connection_timeout=1.0,
            broker_connection_retry=False,
            broker_use_ssl=tls_of(self.broker_url),
            broker_transport_options=transport_options(self.broker_url),
        )
        app.control.mailbox.producer_pool = None  # publish on `connection` too, not on a pooled one of its own
        return app

    @cached_property
    def connection(self) -> Connection:
        """One connection for every call, closed with an AMQP close at the end (Celery's own pool would only
        drop the socket, which the broker logs as a client that unexpectedly closed its connection)."""
        connection: Connection = self.app.connection_for_write()
        return connection

    def ping(self, names: list[str], timeout: float = 1.0) -> set[str]:
        """The node names among `names` that answered within `timeout`."""
        if not names:
            return set()
        try:
            replies = self.app.control.ping(destination=names, timeout=timeout, connection=self.connection)
        except _broker_errors():
            return set()
        return {name for reply in replies or [] for name in reply}

    def inspect(self, method: str, names: list[str] | None, timeout: float = 0.5, *args: Any) -> dict[str, Any]:
        """One inspect call (stats, active, registered...): {node name: reply} of those who answered."""
        if names == []:
            return {}
        inspector = self.app.control.inspect(destination=names, timeout=timeout, connection=self.connection)
        try:
            return getattr(inspector, method)(*args) or {}
        except _broker_errors() as exc:
            raise self._unreachable(exc) from None

    def command(self, name: str, names: list[str] | None, timeout: float = 1.0, **arguments: Any) -> dict[str, Any]:
        """A control command (rate_limit, pool_grow, add_consumer...): {node name: its reply, {"ok": ...} or
        {"error": ...}} of those who answered."""
        if names == []:
            return {}
        try:
            replies = self.app.control.broadcast(
                name, arguments=arguments, destination=names, reply=True, timeout=timeout, connection=self.connection
            )
        except _broker_errors() as exc:
            raise self._unreachable(exc) from None
        return {node: reply for item in replies or [] for node, reply in item.items()}

    def shutdown(self, names: list[str], wait: float = 5.0) -> set[str]:
        """Ask workers to shut down (they do not reply to it); return those that stopped answering a ping."""
        try:
            self.app.control.broadcast("shutdown", destination=names, connection=self.connection)
        except _broker_errors() as exc:
            raise self._unreachable(exc) from None
        deadline = time.monotonic() + wait
        answering = set(names)
        while answering and time.monotonic() < deadline:
            time.sleep(0.2)
            answering = self.ping(sorted(answering), timeout=0.5)
        return set(names) - answering

    def revoke(self, task_id: str | list[str], terminate: bool = False, timeout: float = 1.0) -> list[str]:
        """Revoke a task (or several, in one message) on every worker; return the nodes that acknowledged it."""
        try:
            replies = self.app.control.revoke(
                task_id, terminate=terminate, reply=True, timeout=timeout, connection=self.connection
            )
        except _broker_errors() as exc:
            raise self._unreachable(exc) from None
        return [name for reply in replies or [] for name in reply]

    def queued(self) -> int:
        """How many messages wait in the task queues (what `purge` would delete)."""
        import amqp
        import kombu.exceptions

        try:
            channel = self.connection.default_channel
            total = 0
            for name in self.app.amqp.queues:
                try:
                    total += channel.queue_declare(name, passive=True).message_count
                except (amqp.exceptions.NotFound, kombu.exceptions.ChannelError):  # Redis: an empty queue
                    channel = self.connection.channel()  # the broker closed the channel: no such queue yet
            return total
        except _broker_errors() as exc:
            raise self._unreachable(exc) from None

    def purge(self) -> int:
        """Delete every message waiting in the task queues; return how many."""
        try:
            return int(self.app.control.purge(connection=self.connection))
        except _broker_errors() as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> ServiceUnreachable:
        return unreachable("broker", mask_url(self.broker_url), exc, hint=start_or_check("broker"))

    def close(self) -> None:
        if "connection" in self.__dict__:
            try:
                self.connection.close()
            except _broker_errors():
                self.connection.collect()
        if "app" in self.__dict__:
            self.app.close()

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
