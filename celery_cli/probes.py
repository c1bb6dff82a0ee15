"""Cheap readiness probes: an AMQP login, an authenticated Redis PING, a Celery ping of named workers."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .errors import ServiceUnreachable

if TYPE_CHECKING:
    from celery import Celery

    from .connection import Connection


class BrokerRefusedLogin(ServiceUnreachable):
    """The broker answers but refuses tcel's user: its data volume was made with other credentials."""


def probe_broker(connection: Connection, timeout: float = 1.0) -> None:
    """Log in to the broker over AMQP, or raise saying why not."""
    import amqp

    where = f"{connection.host}:{connection.broker_port}"
    client = amqp.Connection(
        host=where,
        userid=connection.broker_user,
        password=connection.broker_password,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
    )
    try:
        client.connect()
    except amqp.exceptions.AccessRefused:
        raise BrokerRefusedLogin(
            f"the broker at {where} refuses user {connection.broker_user!r}",
            hint="its volume was made with other credentials: run 'tcel down --volumes', then 'tcel up'",
        ) from None
    except (OSError, amqp.exceptions.AMQPError) as exc:
        raise ServiceUnreachable(f"the broker at {where} does not answer ({exc or type(exc).__name__})") from None
    finally:
        client.collect()


def probe_backend(connection: Connection, timeout: float = 1.0) -> None:
    """Send an authenticated PING to the backend, or raise saying why not."""
    import redis

    where = f"{connection.host}:{connection.backend_port}"
    client = redis.Redis(
        host=connection.host,
        port=connection.backend_port,
        password=connection.backend_password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise ServiceUnreachable(f"the backend at {where} does not answer ({exc})") from None
    finally:
        client.close()


class WorkerPing:
    """Celery pings to a known set of workers over one reused broker connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @cached_property
    def app(self) -> Celery:
        from celery import Celery

        app = Celery("tcel", broker=self.connection.broker_url(), set_as_current=False)
        app.conf.update(broker_connection_timeout=1.0, broker_connection_retry=False)
        return app

    def answering(self, names: list[str], timeout: float = 1.0) -> set[str]:
        """The node names among `names` that answered within `timeout` (returns as soon as all did)."""
        if not names:
            return set()
        try:
            replies = self.app.control.ping(destination=names, timeout=timeout)
        except OSError:
            return set()
        return {name for reply in replies or [] for name in reply}

    def close(self) -> None:
        if "app" in self.__dict__:
            self.app.close()


def worker_node(hostname: str) -> str:
    """The Celery node name of the worker running in the container with that host name."""
    return f"celery@{hostname}"
