"""tcel's index of the tasks it sent (kept by the worker's hooks too; see names.py): a task shows as queued
before any worker has it, and keeps the exact call `tcel retry` sends again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .credentials import mask_url
from .errors import BackendRefused
from .names import CALL_KEPT_MAX, INDEX_FUNCTION, INDEX_KEY, INDEX_LIBRARY, INDEX_TTL, INFO_KEY, JOB_KEY, MAX_TASKS
from .names import RESULT_KEY as META_KEY
from .result_store import ResultStore
from .task_args import shown

if TYPE_CHECKING:
    import redis


def record_sent(
    store: ResultStore,
    task_id: str,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    queue: str,
    sent: float,
    retry_of: str | None = None,
    periodic: str | None = None,
    job: dict[str, Any] | None = None,
) -> None:
    """Put a task tcel sent into the index, so it shows as queued before any worker has it, and keep what
    `tcel retry` needs to send it again; for a streamed sum's final task, what the job was and its chunk
    tasks' ids (a list of its own, read only when that one task is looked up)."""
    fields: dict[Any, str | float] = {"name": name, "args": shown(args), "queue": queue, "sent": sent}
    if kwargs:
        fields["kwargs"] = shown(kwargs)
    call = kept_call(args, kwargs)
    if call is not None:
        fields["call"] = call
    if retry_of:
        fields["retry_of"] = retry_of
    if periodic:
        fields["periodic"] = periodic
    chunk_ids = []
    if job is not None:
        chunk_ids = job.get("chunk_ids", [])
        fields["job"] = json.dumps({key: value for key, value in job.items() if key != "chunk_ids"})

    def fill(pipe: redis.client.Pipeline) -> None:
        index(pipe, task_id, fields, sent)
        for start in range(0, len(chunk_ids), 1000):
            pipe.rpush(JOB_KEY + task_id, *chunk_ids[start : start + 1000])
        if chunk_ids:
            pipe.expire(JOB_KEY + task_id, INDEX_TTL)

    with store.errors():
        run(store, fill)


def index(pipe: redis.client.Pipeline, task_id: str, fields: dict[Any, str | float], score: float) -> None:
    """Add a task to the index (trimmed as the workers trim it: names.INDEX_SCRIPT) and write its fields."""
    values = [item for pair in fields.items() for item in pair]
    oldest = time.time() - INDEX_TTL
    args = [task_id, score, oldest, MAX_TASKS, INDEX_TTL, INFO_KEY, JOB_KEY, *values]
    pipe.fcall(INDEX_FUNCTION, 2, INDEX_KEY, INFO_KEY + task_id, *args)


def run(store: ResultStore, fill: Callable[[redis.client.Pipeline], None]) -> list[Any]:
    """The commands `fill` puts in a pipeline, in one round trip; on a Redis without the index's function yet,
    load it and send them again (as the workers' hooks do)."""
    from redis.exceptions import ResponseError

    client = store.client
    try:
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        return pipe.execute()
    except ResponseError as exc:
        if "function not found" not in str(exc).lower():
            raise
        load_function(store)
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        return pipe.execute()


def load_function(store: ResultStore) -> None:
    """Load (or replace) the index's function, which the workers call and may not load themselves. A backend
    that answers but refuses it (an ACL without FUNCTION for this login, a Redis older than 7, a replica) is
    BackendRefused, not a backend that does not answer: waiting longer would not change it."""
    from redis.exceptions import ResponseError

    try:
        store.client.function_load(INDEX_LIBRARY, replace=True)
    except ResponseError as exc:
        raise function_refused(store.backend_url, exc) from None


def function_refused(backend_url: str, cause: Exception) -> BackendRefused:
    """What to say when the backend refuses FUNCTION LOAD, with the way out its reason points to."""
    from redis.exceptions import NoPermissionError

    reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    if "unknown command" in reason.lower():
        hint = "tcel needs Redis 7 or newer as the backend: give such an image with --backend-image"
    elif isinstance(cause, NoPermissionError):
        hint = (
            "the backend's users are not the ones this stack's state file names (made by another tcel, or "
            "another --backend-url): 'tcel down' then 'tcel up' keeps the data and gives the backend its users again"
        )
    else:
        hint = "see 'tcel logs backend'"
    return BackendRefused(
        f"the backend at {mask_url(backend_url)} answers but refuses to load tcel's task index function "
        f"(FUNCTION LOAD: {reason})",
        hint=hint,
    )


def stored_call(store: ResultStore, task_id: str) -> tuple[list[Any], dict[str, Any], str | None] | None:
    """The exact args, kwargs and queue a task was sent with: from the index, else from Celery's extended
    result; None when neither kept them."""
    with store.errors():
        pipe = store.client.pipeline(transaction=False)
        pipe.hmget(INFO_KEY + task_id, ["call", "queue"])
        pipe.get(META_KEY + task_id)
        (call, queue), meta_json = pipe.execute()
    meta = json.loads(meta_json) if meta_json else {}
    if call:
        kept = json.loads(call)
        return kept["args"], kept["kwargs"], queue or meta.get("queue")
    if isinstance(meta.get("args"), list) and isinstance(meta.get("kwargs"), dict):
        return meta["args"], meta["kwargs"], queue or meta.get("queue")
    return None


def kept_call(args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The exact arguments as the index keeps them for `tcel retry`, or None when they are too big to keep."""
    parts, size = [], 0
    for part in json.JSONEncoder().iterencode({"args": args, "kwargs": kwargs}):  # stops early on big ones
        size += len(part)
        if size > CALL_KEPT_MAX:
            return None
        parts.append(part)
    return "".join(parts)
