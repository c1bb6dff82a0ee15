"""Cheap readiness probes of the broker and the backend: an AMQP login, an authenticated Redis PING."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ServiceUnreachable, unreachable

if TYPE_CHECKING:
    import amqp

    from .credentials import Credentials


class BrokerRefusedLogin(ServiceUnreachable):
    """The broker answers but refuses tcel's user: its data volume was made with other credentials."""


def amqp_client(credentials: Credentials, timeout: float) -> amqp.Connection:
    """An AMQP connection (not yet open) to the stack's broker from the host, every wait bounded."""
    import amqp

    return amqp.Connection(
        host=f"{credentials.host}:{credentials.broker_port}",
        userid=credentials.broker_user,
        password=credentials.broker_password,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
    )


def close_quietly(client: amqp.Connection) -> None:
    """Close with an AMQP close, so the broker does not log an unexpectedly closed connection; a connection
    that is already broken is only dropped."""
    import amqp

    try:
        if client.connected:
            client.close()
    except (OSError, amqp.exceptions.AMQPError):
        pass
    finally:
        client.collect()


def probe_broker(credentials: Credentials, timeout: float = 1.0) -> None:
    """Log in to the broker over AMQP, or raise saying why not."""
    import amqp

    where = f"{credentials.host}:{credentials.broker_port}"
    client = amqp_client(credentials, timeout)
    try:
        client.connect()
    except amqp.exceptions.AccessRefused:
        raise BrokerRefusedLogin(
            f"the broker at {where} refuses user {credentials.broker_user!r}",
            hint="its volume was made with other credentials: run 'tcel down --volumes', then 'tcel up'",
        ) from None
    except (OSError, amqp.exceptions.AMQPError) as exc:
        raise unreachable("broker", where, exc) from None
    finally:
        close_quietly(client)


def probe_backend(credentials: Credentials, timeout: float = 1.0) -> None:
    """Send an authenticated PING to the backend, or raise saying why not."""
    import redis

    where = f"{credentials.host}:{credentials.backend_port}"
    client = redis.Redis(
        host=credentials.host,
        port=credentials.backend_port,
        password=credentials.backend_password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise unreachable("backend", where, exc) from None
    finally:
        client.close()
