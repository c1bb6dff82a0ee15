"""Which broker a stack runs, RabbitMQ or Redis, told from its URL: the one place that knows the difference
between their URLs, their visibility timeout, and what only RabbitMQ offers."""

from __future__ import annotations

import os
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
