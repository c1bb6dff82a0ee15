"""Which broker a stack runs, RabbitMQ or Redis, told from its URL: the one place that knows the difference
between their URLs, their visibility timeout, and what only RabbitMQ offers."""

from __future__ import annotations

import os
from datetime import datetime
from urllib.parse import urlsplit

from .errors import UsageError

RABBITMQ = "rabbitmq"
REDIS = "redis"
KINDS = (RABBITMQ, REDIS)
REDIS_SCHEMES = ("redis", "rediss")
# kombu's Redis transport hands a message it delivered but was not acked back to the queue after this many
# seconds (its `visibility_timeout`, 1 h by default): tcel sets it explicitly for workers and clients, so
# `status` can show it and `call --eta/--countdown` can warn about a task that would wait longer (it would run
# more than once).
DEFAULT_VISIBILITY_TIMEOUT = 3600
VISIBILITY_VARIABLE = "TCEL_VISIBILITY_TIMEOUT"


def kind_of(broker_url: str) -> str:
    """RABBITMQ or REDIS, from the URL's scheme (the first of kombu's failover list)."""
    scheme = urlsplit(broker_url.split(";")[0].strip()).scheme
    return REDIS if scheme in REDIS_SCHEMES else RABBITMQ


def is_redis(broker_url: str) -> bool:
    return kind_of(broker_url) == REDIS


def visibility_timeout() -> int:
    """The visibility timeout tcel gives workers and clients of a Redis broker, in seconds."""
    value = os.environ.get(VISIBILITY_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_VISIBILITY_TIMEOUT


def transport_options(broker_url: str) -> dict[str, int]:
    """Celery's `broker_transport_options` for the broker: the visibility timeout on Redis, none on RabbitMQ."""
    return {"visibility_timeout": visibility_timeout()} if is_redis(broker_url) else {}


def rabbitmq_only(what: str, broker_url: str) -> None:
    """Refuse, with one line (exit 2), something only a RabbitMQ broker offers when the broker is Redis."""
    if is_redis(broker_url):
        raise UsageError(
            f"{what} works with a RabbitMQ broker only; this stack's broker is Redis",
            hint="run 'tcel down', then 'tcel up --broker rabbitmq' to use it (see docs/redis-broker.md)",
        )


def eta_warning(broker_url: str, countdown: float | None, eta: datetime | None) -> str | None:
    """On a Redis broker, the warning for a task that waits (countdown or ETA) longer than the visibility timeout:
    a worker holds it unacked all that time, and kombu hands it to another worker once the timeout passes, so
    it runs more than once (Celery's documented caveat of the Redis transport)."""
    if not is_redis(broker_url):
        return None
    wait = countdown if countdown is not None else None
    if wait is None and eta is not None:
        wait = (eta - datetime.now(eta.tzinfo)).total_seconds()
    limit = visibility_timeout()
    if wait is None or wait <= limit:
        return None
    return (
        f"this task waits {wait:.0f} s, longer than the Redis broker's visibility timeout ({limit} s): a worker holds "
        f"it unacked meanwhile and kombu gives it to another worker every {limit} s, so it may run more than once "
        f"(raise {VISIBILITY_VARIABLE} for workers and clients, or see docs/redis-broker.md)"
    )
