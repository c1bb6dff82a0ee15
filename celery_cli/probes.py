"""Cheap readiness probes of the broker and the backend: an AMQP login, an authenticated Redis PING."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ServiceUnreachable

if TYPE_CHECKING:
    import amqp

    from .connection import Connection


class BrokerRefusedLogin(ServiceUnreachable):
    """The broker answers but refuses tcel's user: its data volume was made with other credentials."""


def amqp_client(connection: Connection, timeout: float) -> amqp.Connection:
    """An AMQP connection (not yet open) to the stack's broker from the host, every wait bounded."""
    import amqp

    return amqp.Connection(
        host=f"{connection.host}:{connection.broker_port}",
        userid=connection.broker_user,
        password=connection.broker_password,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
    )


def probe_broker(connection: Connection, timeout: float = 1.0) -> None:
    """Log in to the broker over AMQP, or raise saying why not."""
    import amqp

    where = f"{connection.host}:{connection.broker_port}"
    client = amqp_client(connection, timeout)
    try:
        client.connect()
        client.close()
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
