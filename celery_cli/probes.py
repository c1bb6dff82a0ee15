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
    """An AMQP connection (not yet open) to the stack's broker from the host, every wait bounded; over TLS,
    verifying the broker's certificate and name against the stack's authority, when the stack serves TLS."""
    import amqp

    tls = (
        {"context": {"cafile": credentials.ca_file}, "server_hostname": credentials.host} if credentials.tls else False
    )
    return amqp.Connection(
        host=f"{credentials.host}:{credentials.broker_port}",
        userid=credentials.broker_user,
        password=credentials.broker_password,
        ssl=tls,
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
    """Log in to the broker (over AMQP; a Redis broker takes an authenticated PING), or raise saying why not."""
    import amqp

    if credentials.broker == "redis":
        url = credentials.broker_url()
        return probe_redis("broker", credentials.host, credentials.broker_port, url, timeout)
    where = f"{credentials.host}:{credentials.broker_port}"
    client = amqp_client(credentials, timeout)
    try:
        client.connect()
    except amqp.exceptions.AccessRefused:
        raise BrokerRefusedLogin(
            f"the broker at {where} refuses user {credentials.broker_user!r}",
            hint="its volume was made with other credentials, kept in the state file that made it: restore that "
            "file (or run tcel as the user who started the stack); only to start afresh, 'tcel down --volumes' "
            "deletes the data",
        ) from None
    except (OSError, amqp.exceptions.AMQPError) as exc:
        raise unreachable("broker", where, exc) from None
    finally:
        close_quietly(client)


def probe_backend(credentials: Credentials, timeout: float = 1.0) -> None:
    """Send an authenticated PING to the backend, or raise saying why not."""
    probe_redis("backend", credentials.host, credentials.backend_port, credentials.backend_url(), timeout)


def probe_redis(service: str, host: str, port: int, url: str, timeout: float) -> None:
    """Send an authenticated PING to a Redis of the stack (the backend, or a Redis broker), or raise saying why
    not; a refused password is the broker's BrokerRefusedLogin, as RabbitMQ's refused login is."""
    import redis

    where = f"{host}:{port}"
    # the stack's URL: over TLS (rediss://), the server's certificate and name verified against its authority
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.exceptions.AuthenticationError:
        if service != "broker":
            raise unreachable(service, where, "it refuses the password") from None
        raise BrokerRefusedLogin(
            f"the Redis broker at {where} refuses the stack's password",
            hint="its volume was made with another state file: restore that file; only to start afresh, "
            "'tcel down --volumes' deletes the data",
        ) from None
    except redis.exceptions.RedisError as exc:
        raise unreachable(service, where, exc) from None
    finally:
        client.close()


class FlowerRefusedLogin(ServiceUnreachable):
    """Flower answers but refuses the login the state file keeps."""


class MetricsRefusedLogin(ServiceUnreachable):
    """The exporter answers but refuses the login the state file keeps."""


def flower_get(credentials: Credentials, path: str, timeout: float = 1.0, login: bool = True) -> tuple[int, bytes]:
    """GET a path of the stack's Flower from the host (with its basic-auth login unless told not to):
    (status, body); a connection that fails raises OSError."""
    user_password = (credentials.flower_user, credentials.flower_password) if login else None
    return http_get(credentials.flower_url().rstrip("/") + path, user_password, timeout, credentials.ca_file or None)


def http_get(url: str, login: tuple[str, str] | None, timeout: float, ca_file: str | None = None) -> tuple[int, bytes]:
    """GET `url` with a basic-auth login (user, password), if given: (status, body); a connection that fails
    raises OSError."""
    import base64
    import ssl
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if login:
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    # https://: the server's certificate and name verified against `ca_file` (the stack's authority)
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def probe_flower(credentials: Credentials, workers: list[str], timeout: float = 1.0) -> None:
    """Flower answers its /healthcheck, takes the login, and its /api/workers lists every worker in `workers`
    (node names) as alive from their events, as its dashboard shows them; or raise saying what is missing."""
    import json

    where = credentials.flower_url()
    try:
        status, _ = flower_get(credentials, "/healthcheck", timeout, login=False)
        if status != 200:
            raise unreachable("Flower", where, f"/healthcheck answered {status}")
        status, body = flower_get(credentials, "/api/workers?status=1", timeout)
    except OSError as exc:
        raise unreachable("Flower", where, exc) from None
    if status == 401:
        raise FlowerRefusedLogin(
            f"Flower at {where} refuses user {credentials.flower_user!r}",
            hint="it was made with another login: run 'tcel down', then 'tcel up --flower'",
        )
    if status != 200:
        raise unreachable("Flower", where, f"/api/workers answered {status}")
    alive = {name for name, up in json.loads(body).items() if up}
    missing = sorted(set(workers) - alive)
    if missing:
        raise unreachable("Flower", where, f"it does not list {', '.join(missing)} yet")


def probe_metrics(credentials: Credentials, timeout: float = 3.0) -> bytes:
    """The exporter answers a scrape with its login and reads the broker in it; its text, or raise saying why
    not."""
    where = credentials.metrics_url()
    try:
        login = (credentials.metrics_user, credentials.metrics_password)
        status, body = http_get(where, login, timeout, credentials.ca_file or None)
    except OSError as exc:
        raise unreachable("exporter", where, exc) from None
    if status == 401:
        raise MetricsRefusedLogin(
            f"the exporter at {where} refuses user {credentials.metrics_user!r}",
            hint="it was made with another login: run 'tcel down', then 'tcel up --metrics'",
        )
    if status != 200:
        raise unreachable("exporter", where, f"it answered {status}")
    if b'tcel_exporter_source_up{source="broker"} 1.0' not in body:
        raise unreachable("exporter", where, "it cannot read the broker yet")
    return body
