"""tcel's worker side, added to every worker image and run as the worker's app: `celery -A tcel_worker worker`.

It loads the project's own app (TCEL_APP, found as `celery -A` finds it) and gives it, without a change to the
project's files:
- the settings that keep tasks safe (late acks, reject on worker lost, prefetch 1, heartbeats, JSON only) and
  the ones tcel's commands rely on (STARTED states, task events, bounded retries), each only where the
  project's configuration leaves Celery's default: where it sets a value of its own, that value stays and the
  worker reports it;
- tcel's worker hooks (the recent-task index `tcel results` reads, the quick start), from tcel_worker_hooks;
- a report, once the worker is ready, of what it really runs (Celery's version, the settings kept by the
  project, where its broker and backend are) into the stack's Redis, reached through the environment's URL
  (CELERY_RESULT_BACKEND), not the app's configuration: `tcel up` reads it;
- for `tcel up --beat` (tcel_beat.py, RedBeat's scheduler): RedBeat's Redis is the stack's backend, and the beat
  loops at least every BEAT_MAX_INTERVAL seconds, holding its lock for BEAT_LOCK_TIMEOUT: a beat killed
  without releasing it is replaced that long after, never sooner.

Applied here, when `celery -A` imports this module, rather than from a module given to `--include`: the worker
finalizes the app (binding every task's acks_late and serializer) before it imports --include modules.
"""

from __future__ import annotations  # the project's image may run an older Python than tcel

import json
import logging
import os
import platform
from typing import Any
from urllib.parse import urlsplit

# Celery ships no type information; tcel_worker_hooks is beside this module in the image only.
import celery  # type: ignore[import-untyped]
import tcel_worker_hooks  # type: ignore[import-not-found]  # noqa: F401  (connects tcel's hooks)
from celery import signals
from celery.app.defaults import DEFAULTS  # type: ignore[import-untyped]
from celery.app.utils import find_app  # type: ignore[import-untyped]

REPORT_KEY = "tcel:workers"
REPORT_TTL = 86400

# What keeps a task from being lost when a worker dies, and from making the worker unpickle a message.
SAFE = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_heartbeat": 10,
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
}
# What tcel's commands rely on: STARTED states for `result`, events for Flower, retries bounded and kept up.
RELIED_ON = {
    "task_track_started": True,
    "worker_send_task_events": True,
    "broker_connection_retry_on_startup": True,
    "broker_channel_error_retry": True,
    "result_backend_always_retry": True,
    "result_backend_max_retries": 10,
    "redis_socket_timeout": 10,
    "redis_socket_connect_timeout": 5,
}

# A Redis broker's transport options (kombu's Redis transport), each where the project's own
# broker_transport_options leaves it out:
# - the visibility timeout (TCEL_VISIBILITY_TIMEOUT, else kombu's own 1 h), set explicitly as tcel's clients set
#   it: a task delivered but not acked goes back to its queue after it;
# - a network cut leaves the worker's broker connections open but silent (no close ever reaches either end): with
#   kombu's default socket_timeout (none) a command the worker sends on one (its event heartbeat, an ack) waits
#   for an answer forever and holds the worker's event loop; past 10 s it fails and the worker connects again.
#   kombu's own check drops a BRPOP whose reply is overdue by health_check_interval (25 s by default; 10 here).
#   tests/faults/test_redis_broker_faults.py cuts the worker off and sees it consume again, and not without them;
# - retry_on_timeout: kombu records a message BRPOP took off its list in the unacked hash with a second command, on
#   another of its pooled connections; when that one is stale (the same cut), the command fails and the message,
#   already off the list and in no hash, is lost (1 of 6 in that test, twice). With it, redis-py sends a command
#   that failed on a broken connection (ConnectionError or TimeoutError) once more on a new one: kombu's pool
#   leaves redis-py's retries at none.
REDIS_BROKER_OPTIONS = {
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "health_check_interval": 10,
    "retry_on_timeout": True,
}


def redis_broker_options(project_options: Any) -> dict[str, Any]:
    """The worker's broker_transport_options on a Redis broker: the project's, with tcel's where it has none."""
    visibility = {"visibility_timeout": int(os.environ.get("TCEL_VISIBILITY_TIMEOUT") or 3600)}
    return {**visibility, **REDIS_BROKER_OPTIONS, **dict(project_options or {})}


# The beat's loop and lock (RedBeat's lock lasts 5 loops by default: 25 minutes with Celery's 5-minute loop, the
# time a killed beat's successor would wait). The lock is renewed on every loop, so it outlives 4 slow loops.
BEAT_MAX_INTERVAL = 5
BEAT_LOCK_TIMEOUT = 20

logger = logging.getLogger(__name__)


def _same(one: object, other: object) -> bool:
    if isinstance(one, (list, tuple, set, frozenset)) and isinstance(other, (list, tuple, set, frozenset)):
        return sorted(map(str, one)) == sorted(map(str, other))
    return one == other


def _set_by_project(conf: Any, key: str) -> bool:
    """Whether the project's configuration names `key` itself, whatever the value: in Celery(...)'s arguments,
    conf.update, or its config object, under the new name, the old one or Django's CELERY_ namespace. A project
    that sets a protection to Celery's own default (task_acks_late = False) has chosen it: tcel keeps it."""
    conf.get(key)  # loads the project's configuration
    try:
        names = conf._to_keys(key)
        return any(name in mapping for mapping in conf.maps[:-1] for name in names)
    except (AttributeError, TypeError):  # a Celery whose configuration is laid out otherwise
        return key not in DEFAULTS or not _same(conf.get(key), DEFAULTS[key])


def _apply(conf: Any) -> dict[str, Any]:
    """Set each of tcel's settings the project leaves to Celery; return those it sets otherwise."""
    kept: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for key, wanted in {**SAFE, **RELIED_ON}.items():
        if not _set_by_project(conf, key):
            changes[key] = wanted
        elif not _same(conf.get(key), wanted):
            kept[key] = conf.get(key)
    conf.update(changes)
    return kept


def _where(url: object) -> str:
    """scheme://host:port of a URL, without its user and password."""
    parts = urlsplit(str(url or ""))
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")


# The stack's backend as tcel set it, read before the project's code runs (which may change the environment,
# as load_dotenv(override=True) does).
STACK_BACKEND = os.environ.get("CELERY_RESULT_BACKEND")
app = find_app(os.environ["TCEL_APP"])
KEPT_BY_PROJECT = _apply(app.conf)
if str(app.conf.broker_url or "").startswith(("redis://", "rediss://")):
    app.conf.broker_transport_options = redis_broker_options(app.conf.broker_transport_options)
if STACK_BACKEND and not app.conf.get("redbeat_redis_url"):
    app.conf.redbeat_redis_url = STACK_BACKEND
# A stack that serves TLS (on Swarm, or published beyond loopback): its broker speaks AMQPS only, verified, its
# name too, against the stack's authority, whose certificate TCEL_CA_FILE names (the backend's rediss:// URL names
# it itself); kombu sends and checks the URL's host when server_hostname is None.
if os.environ.get("TCEL_CA_FILE") and not app.conf.get("broker_use_ssl"):
    import ssl

    app.conf.broker_use_ssl = {
        "ca_certs": os.environ["TCEL_CA_FILE"],
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": None,
    }
    # RedBeat takes broker_use_ssl for its rediss:// client unless redbeat_redis_use_ssl is set, and passes it to
    # redis-py, which knows none of py-amqp's names (the beat exited at start: an unexpected keyword argument)
    if not app.conf.get("redbeat_redis_use_ssl"):
        app.conf.redbeat_redis_use_ssl = {"ssl_cert_reqs": "required", "ssl_ca_certs": os.environ["TCEL_CA_FILE"]}
if not _set_by_project(app.conf, "beat_max_loop_interval"):
    app.conf.beat_max_loop_interval = BEAT_MAX_INTERVAL
if not app.conf.get("redbeat_lock_timeout"):
    app.conf.redbeat_lock_timeout = BEAT_LOCK_TIMEOUT


@signals.worker_ready.connect(dispatch_uid="tcel-worker-report")  # type: ignore[untyped-decorator]
def _report(sender: Any = None, **_: Any) -> None:
    """What this worker runs, into the stack's Redis for `tcel up`; a failure is logged, never raised."""
    url = STACK_BACKEND
    if not url:
        return
    backend = app.backend
    report = {
        "celery": celery.__version__,
        "python": platform.python_version(),
        "app": os.environ["TCEL_APP"],
        "broker": _where(app.conf.broker_url),
        "backend": _where(getattr(backend, "url", None) or app.conf.result_backend),
        "backend_class": type(backend).__name__,
        "backend_from_environment": str(app.conf.result_backend) == url and "redis" in type(backend).__name__.lower(),
        "kept_by_project": KEPT_BY_PROJECT,
    }
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        client.hset(REPORT_KEY, getattr(sender, "hostname", "") or platform.node(), json.dumps(report, default=str))
        client.expire(REPORT_KEY, REPORT_TTL)
        client.close()
    except Exception:  # the report must never cost the worker
        logger.warning("tcel: cannot report this worker's settings to the stack's Redis", exc_info=True)
