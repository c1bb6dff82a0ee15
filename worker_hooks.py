"""Worker-side hooks tcel relies on.

- The worker waits for the broker to accept connections before its first attempt, instead of falling into
  kombu's 2-4-6 s back-off while RabbitMQ boots: it connects within a tenth of a second of the broker. It
  waits after its pool has started (a worker bootstep that needs the pool; the consumer starts after every
  worker step), so forking the pool overlaps the broker's boot.
- A bounded index of recent tasks in the result backend, which `tcel results` reads instead of scanning Redis:
  a sorted set of task ids by time, trimmed to the newest MAX_TASKS and to `result_expires`, and a small hash
  per task (name, args, kwargs, queue, received, started, finished; and the exact args and kwargs as JSON when
  they fit CALL_KEPT_MAX, which `tcel retry` sends again; the beat entry that sent it, from the header
  PERIODIC_HEADER). Every task a worker receives passes here, whoever sent it. A failure here is logged, never
  raised.

Every worker image carries this module as tcel_worker_hooks (tcel_worker.py loads it); the template's
celeryconfig.py imports it as worker_hooks too. Each hook is connected under a dispatch_uid, so that the
second import connects nothing and every hook runs once.
"""

import json
import logging
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

from celery import bootsteps, signals

INDEX_KEY = "tcel:tasks"
INFO_KEY = "tcel:task:"
MAX_TASKS = 10_000
SHOWN_LIMIT = 200  # as celery_cli/task_args.py shows arguments
CALL_KEPT_MAX = 65536
# The beat entry that sent a task, as django-celery-beat and tcel's beat (tcel_beat.py) name it on the message
PERIODIC_HEADER = "periodic_task_name"

BROKER_WAIT_SECONDS = 120

logger = logging.getLogger(__name__)


class WaitForBroker(bootsteps.StartStopStep):
    """Wait for the broker's port once the pool runs, before the consumer makes its first connection."""

    requires = ("celery.worker.components:Pool",)

    def start(self, worker):
        _wait_for_broker(worker.app.conf.broker_url)


@signals.celeryd_init.connect(dispatch_uid="tcel-broker-wait")
def _add_broker_wait(instance=None, **_):
    instance.app.steps["worker"].add(WaitForBroker)


def _wait_for_broker(url):
    parts = urlsplit(url or "")
    if parts.scheme not in ("amqp", "pyamqp") or not parts.hostname:
        return
    deadline = time.monotonic() + BROKER_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            socket.create_connection((parts.hostname, parts.port or 5672), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)


def _shown(value, limit=SHOWN_LIMIT):
    """Arguments as JSON cut to `limit` characters: the same as celery_cli/task_args.py's `shown` (a test
    compares them), so a task shows alike whoever sent it."""
    text = _json_prefix(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_prefix(value, budget):
    if isinstance(value, (list, tuple)):
        text = "["
        for index, item in enumerate(value):
            if len(text) >= budget:
                return text
            text += (", " if index else "") + _json_prefix(item, budget - len(text))
        return text + "]"
    if isinstance(value, dict):
        text = "{"
        for index, (key, item) in enumerate(value.items()):
            if len(text) >= budget:
                return text
            text += (", " if index else "") + json.dumps(str(key)) + ": " + _json_prefix(item, budget - len(text))
        return text + "}"
    if isinstance(value, str):  # a long text is cut before it is rendered
        return json.dumps(value[:budget])
    return json.dumps(value, default=repr)


def _ttl(app):
    expires = app.conf.result_expires
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
    return int(seconds or 86400)


def _write(app, task_id, fields, score=None):
    try:
        client = app.backend.client
        ttl = _ttl(app)
        now = time.time()
        pipe = client.pipeline(transaction=False)
        if score is not None:
            pipe.zadd(INDEX_KEY, {task_id: score}, nx=True)
            pipe.zremrangebyscore(INDEX_KEY, "-inf", now - ttl)
            pipe.zremrangebyrank(INDEX_KEY, 0, -MAX_TASKS - 1)
            pipe.expire(INDEX_KEY, ttl)
        pipe.hset(INFO_KEY + task_id, mapping=fields)
        pipe.expire(INFO_KEY + task_id, ttl)
        pipe.execute()
    except Exception:  # the index must never cost a task
        logger.warning("tcel: cannot update the task index for %s", task_id, exc_info=True)


def _kept_call(request):
    """The exact args and kwargs as JSON, or None past CALL_KEPT_MAX (encoding stops there)."""
    parts, size = [], 0
    for part in json.JSONEncoder().iterencode({"args": list(request.args), "kwargs": request.kwargs}):
        size += len(part)
        if size > CALL_KEPT_MAX:
            return None
        parts.append(part)
    return "".join(parts)


@signals.task_received.connect(dispatch_uid="tcel-index-received")
def _received(sender=None, request=None, **_):
    now = time.time()
    fields = {
        "name": request.name,
        "args": _shown(request.args),
        "kwargs": _shown(request.kwargs),
        "received": now,
        "queue": (request.delivery_info or {}).get("routing_key") or "",
    }
    try:
        call = _kept_call(request)
    except (TypeError, ValueError):  # arguments JSON cannot carry (a pickle-accepting worker)
        call = None
    if call is not None:
        fields["call"] = call
    periodic = (getattr(request, "request_dict", None) or {}).get(PERIODIC_HEADER)
    if periodic:
        fields["periodic"] = str(periodic)
    _write(sender.app, request.id, fields, score=now)


@signals.task_prerun.connect(dispatch_uid="tcel-index-started")
def _started(sender=None, task_id=None, task=None, **_):
    _write(task.app, task_id, {"started": time.time(), "worker": task.request.hostname or ""})


@signals.task_postrun.connect(dispatch_uid="tcel-index-finished")
def _finished(sender=None, task_id=None, task=None, **_):
    _write(task.app, task_id, {"finished": time.time()})
