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
  raised. The trim deletes the hashes (and a streamed sum's chunk list) of the tasks it drops, and a hash is
  written only while its task is in the index, so the index's keys stay bounded however many tasks pass:
  INDEX_SCRIPT does both in one call (the client sends tasks through the same script). The environment's
  TCEL_INDEX_MAX_TASKS sets a smaller or larger index than MAX_TASKS.
- Every failure as one small entry (time, id, name, exception, message, worker) in a sorted set by time, trimmed to
  MAX_FAILURES and `result_expires`: `tcel results --group-by exception` and `tcel retry --state FAILURE` read
  that one key.
- For a task of a workflow (chain, group, chord, whoever sent it): its root, parent and group in its hash, its
  id in a sorted set per workflow (FLOW_KEY + the root's id, else the group's), and the steps it carries that
  are not sent yet (the rest of a chain, a chord's body), so that `tcel result --tree` and `tcel revoke --tree`
  see the whole workflow from any of its ids without scanning Redis.

Every worker image carries this module as tcel_worker_hooks (tcel_worker.py loads it); the template's
celeryconfig.py imports it as worker_hooks too. Each hook is connected under a dispatch_uid, so that the
second import connects nothing and every hook runs once.
"""

import json
import logging
import os
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

from celery import bootsteps, signals

INDEX_KEY = "tcel:tasks"
INFO_KEY = "tcel:task:"
FLOW_KEY = "tcel:flow:"
FAILED_KEY = "tcel:failed"
MAX_FAILURES = 100_000
MAX_TASKS = 10_000
INDEX_SIZE = int(os.environ.get("TCEL_INDEX_MAX_TASKS") or MAX_TASKS)
JOB_KEY = "tcel:job:"
# The index's one write, in Redis: add the task (ARGV[2] its score, '' to update only a task indexed), trim what
# is older than ARGV[3] or past the newest ARGV[4] tasks (at most 100 a call, so that no call blocks Redis
# for long), deleting each dropped task's hash and chunk list, then write the fields ARGV[8..] to the task's hash
# if it is (still) indexed. KEYS: the index, the task's hash; ARGV[1] the id, ARGV[5] the ttl, ARGV[6..7] the
# hash and chunk-list prefixes. Standalone Redis only (it names keys it computes), as Celery's Redis backend is.
INDEX_SCRIPT = """
local index, info, id = KEYS[1], KEYS[2], ARGV[1]
if ARGV[2] ~= '' then
  redis.call('ZADD', index, 'NX', ARGV[2], id)
  local batch = 100
  local function drop(ids)
    for _, old in ipairs(ids) do
      redis.call('ZREM', index, old)
      redis.call('DEL', ARGV[6] .. old, ARGV[7] .. old)
    end
  end
  drop(redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch))
  local over = redis.call('ZCARD', index) - tonumber(ARGV[4])
  if over > 0 then drop(redis.call('ZRANGE', index, 0, math.min(over, batch) - 1)) end
  redis.call('EXPIRE', index, ARGV[5])
end
if not redis.call('ZSCORE', index, id) then return 0 end
if #ARGV > 7 then redis.call('HSET', info, unpack(ARGV, 8)) end
redis.call('EXPIRE', info, ARGV[5])
return 1
"""
# The script as the Redis function tcel_index (library tcel), which the CLI loads at `up` (FUNCTION LOAD, kept in
# Redis's data) and which the workers only call (FCALL): their ACL user may run no Lua of its own.
INDEX_FUNCTION = "tcel_index"
INDEX_LIBRARY = "#!lua name=tcel\nredis.register_function('tcel_index', function(KEYS, ARGV)" + INDEX_SCRIPT + "end)\n"
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


def _write(app, task_id, fields, score=None, flow=None):
    try:
        client = app.backend.client
        ttl = _ttl(app)
        now = time.time()

        def fill(pipe):
            _index(pipe, task_id, fields, score, now - ttl, INDEX_SIZE, ttl)
            if flow is not None:
                _write_flow(pipe, task_id, fields, flow, score or now, ttl)

        _run(client, fill)
    except Exception:  # the index must never cost a task
        logger.warning("tcel: cannot update the task index for %s", task_id, exc_info=True)


def _index(pipe, task_id, fields, score, oldest, size, ttl):
    """INDEX_SCRIPT for one task: with a score, add it and trim; then its fields, if it is indexed."""
    values = [item for pair in fields.items() for item in pair]
    pipe.fcall(
        INDEX_FUNCTION,
        2,
        INDEX_KEY,
        INFO_KEY + task_id,
        task_id,
        "" if score is None else score,
        oldest,
        size,
        ttl,
        INFO_KEY,
        JOB_KEY,
        *values,
    )


def _run(client, fill):
    """Send the commands `fill` puts in a pipeline, in one round trip; on a Redis without the index's function
    (a Redis tcel's CLI has not prepared), load it and send them again (every command here may run twice). In a
    tcel stack the workers may not load it (their ACL user): the CLI has."""
    from redis.exceptions import ResponseError

    try:
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        return pipe.execute()
    except ResponseError as exc:
        if "function not found" not in str(exc).lower():
            raise
        client.function_load(INDEX_LIBRARY, replace=True)
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        return pipe.execute()


def _flow_fields(request):
    """The task's place in a workflow (root, parent, group, and the workflow's key), or {} for a lone task."""
    embed = _embed(request)
    root, parent, group = request.root_id, request.parent_id, request.group
    alone = not parent and not group and root in (None, request.id)
    if alone and not embed.get("chain") and not embed.get("chord"):
        return {}, embed
    fields = {key: value for key, value in (("root", root), ("parent", parent), ("group", group)) if value}
    fields["flow"] = root or group or request.id
    return fields, embed


def _embed(request):
    """The callbacks, chain and chord a protocol-2 message carries in its body."""
    try:
        return request._payload[2] or {}
    except (AttributeError, IndexError, TypeError):
        return {}


def _write_flow(pipe, task_id, fields, embed, score, ttl):
    """Put the task, and the steps it carries that are not sent yet, into its workflow's sorted set. A chain's
    first step files the whole rest; each later step files only the one after it (filed already, unless the
    chain was nested where its first step has a parent): one write per step rather than the rest every time."""
    flow = fields["flow"]
    members = {task_id: score}
    previous = task_id
    rest = list(reversed(embed.get("chain") or []))  # Celery keeps a chain's rest last step first
    for step in rest if not fields.get("parent") else rest[:1]:
        step_id = (step.get("options") or {}).get("task_id")
        if not step_id or not step.get("task") or step.get("subtask_type"):
            break  # a group or chord in a chain gets its ids when it is sent
        _pending(pipe, step_id, {"name": step["task"], "parent": previous, "flow": flow}, ttl)
        members[step_id] = score
        previous = step_id
    body = embed.get("chord")
    body_id = ((body or {}).get("options") or {}).get("task_id")
    if body_id and body.get("task") and not body.get("subtask_type"):
        group = body["options"].get("group_id") or fields.get("group") or ""
        _pending(pipe, body_id, {"name": body["task"], "chord_of": group, "flow": flow}, ttl)
        members[body_id] = score
    for key in {flow, fields.get("group") or flow}:  # a plain client's group members each are their own root
        pipe.zadd(FLOW_KEY + key, members, nx=True)
        # bounded as the index is: a task that sends itself again keeps one root for ever
        pipe.zremrangebyrank(FLOW_KEY + key, 0, -INDEX_SIZE - 1)
        pipe.expire(FLOW_KEY + key, ttl)


def _pending(pipe, task_id, fields, ttl):
    """What is known of a step before it is sent: field by field, never over what its own hooks wrote."""
    for key, value in fields.items():
        pipe.hsetnx(INFO_KEY + task_id, key, value)
    pipe.expire(INFO_KEY + task_id, ttl)


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
    flow, embed = _flow_fields(request)
    fields.update(flow)
    _write(sender.app, request.id, fields, score=now, flow=embed if flow else None)


@signals.task_prerun.connect(dispatch_uid="tcel-index-started")
def _started(sender=None, task_id=None, task=None, **_):
    _write(task.app, task_id, {"started": time.time(), "worker": task.request.hostname or ""})


@signals.task_postrun.connect(dispatch_uid="tcel-index-finished")
def _finished(sender=None, task_id=None, task=None, **_):
    _write(task.app, task_id, {"finished": time.time()})


@signals.task_retry.connect(dispatch_uid="tcel-index-retry")
def _retried(sender=None, request=None, reason=None, **_):
    """How many times a task has been retried and when its next try runs, which Celery's result does not keep."""
    when = getattr(reason, "when", None)
    fields = {"retries": (getattr(request, "retries", 0) or 0) + 1}
    if isinstance(when, (int, float)):
        fields["next_try"] = time.time() + when
    elif hasattr(when, "timestamp"):
        fields["next_try"] = when.timestamp()
    _write(sender.app, request.id, fields)


@signals.task_failure.connect(dispatch_uid="tcel-index-failure")
def _failed(sender=None, task_id=None, exception=None, **_):
    """One entry in the failure index; its time is in the entry too, so readers need not fetch the scores."""
    now = time.time()
    entry = {
        "at": round(now, 3),
        "id": task_id,
        "name": getattr(sender, "name", None),
        "exc": type(exception).__name__,
        "msg": str(exception)[:SHOWN_LIMIT],
        "worker": getattr(getattr(sender, "request", None), "hostname", None) or "",
    }
    try:
        ttl = _ttl(sender.app)
        pipe = sender.app.backend.client.pipeline(transaction=False)
        pipe.zadd(FAILED_KEY, {json.dumps(entry, sort_keys=True): now})
        pipe.zremrangebyscore(FAILED_KEY, "-inf", now - ttl)
        pipe.zremrangebyrank(FAILED_KEY, 0, -MAX_FAILURES - 1)
        pipe.expire(FAILED_KEY, ttl)
        pipe.execute()
    except Exception:  # the index must never cost a task
        logger.warning("tcel: cannot record the failure of %s", task_id, exc_info=True)
