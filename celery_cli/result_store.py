"""Reading task results from the Redis result backend: one task, the recent ones, or waiting for one.

Celery's Redis backend stores each result as JSON under `celery-task-meta-<id>` and publishes it on a channel
of the same name; the worker's worker_hooks module keeps `tcel:tasks` (ids by time) and `tcel:task:<id>`
(name, args, times): see names.py. Reading them with redis-py directly costs one round trip and no Celery
import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .credentials import mask_url
from .errors import NotFound, ServiceUnreachable, UsageError, WaitTimeout, start_or_check, unreachable
from .names import CALL_KEPT_MAX, INDEX_KEY, INDEX_TTL, INFO_KEY
from .names import RESULT_KEY as META_KEY
from .task_args import shown

if TYPE_CHECKING:
    import redis

READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


@dataclass
class TaskRecord:
    """What is known of one task: Celery's stored result plus the index's times."""

    id: str
    state: str
    name: str | None = None
    args: str | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    worker: str | None = None
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    finished: float | None = None
    kwargs: str | None = None
    queue: str | None = None
    retry_of: str | None = None  # the task this one sent again (`tcel retry`)

    @property
    def runtime(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(0.0, self.finished - self.started)

    @property
    def shown_state(self) -> str:
        """The state as tcel knows it: Celery says PENDING for a task sent (QUEUED) or received (RECEIVED)
        but not started, and for one it never heard of."""
        if self.state == "PENDING" and self.started is None:
            if self.received is not None:
                return "RECEIVED"
            if self.sent is not None:
                return "QUEUED"
        return self.state

    @property
    def failed(self) -> bool:
        """Ended without a result: what `tcel result` exits 9 for."""
        return self.state in ("FAILURE", "REVOKED")

    @property
    def queued(self) -> bool:
        """Known (sent or received) but not started: what Celery alone reports as PENDING."""
        return self.state == "PENDING" and self.started is None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("sent", "received", "started", "finished"):
            data[key] = iso_time(data[key])
        data["runtime_seconds"] = round(self.runtime, 4) if self.runtime is not None else None
        data["queued"] = self.queued
        data["shown_state"] = self.shown_state
        return data


@dataclass
class BackendInfo:
    version: str
    memory_used: str
    keys: int
    indexed_tasks: int


class ResultStore:
    """The result backend, seen through redis-py; every Redis failure becomes one clear error."""

    def __init__(self, backend_url: str, timeout: float = 3.0) -> None:
        self.backend_url = backend_url
        self.timeout = timeout

    @cached_property
    def client(self) -> redis.Redis:
        import redis

        try:
            return redis.Redis.from_url(
                self.backend_url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                decode_responses=True,
            )
        except ValueError as exc:
            raise UsageError(f"invalid backend URL {mask_url(self.backend_url)}: {exc}",
                             hint="give a redis:// URL") from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import redis

        try:
            yield
        except redis.exceptions.AuthenticationError:
            raise ServiceUnreachable(
                f"the backend at {mask_url(self.backend_url)} refuses the password",
                hint="check --backend-url, or the stack's ~/.local/state/tcel/<project>.env",
            ) from None
        except redis.exceptions.RedisError as exc:
            raise unreachable("backend", mask_url(self.backend_url), exc, hint=start_or_check("backend")) from None

    def record_sent(
        self, task_id: str, name: str, args: list[Any], kwargs: dict[str, Any], queue: str, sent: float,
        retry_of: str | None = None,
    ) -> None:
        """Put a task tcel sent into the index, so it shows as queued before any worker has it, and keep what
        `tcel retry` needs to send it again."""
        fields: dict[str, Any] = {"name": name, "args": shown(args), "queue": queue, "sent": sent}
        if kwargs:
            fields["kwargs"] = shown(kwargs)
        call = kept_call(args, kwargs)
        if call is not None:
            fields["call"] = call
        if retry_of:
            fields["retry_of"] = retry_of
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(INDEX_KEY, {task_id: sent}, nx=True)
            pipe.hset(INFO_KEY + task_id, mapping=fields)
            pipe.expire(INFO_KEY + task_id, INDEX_TTL)
            pipe.execute()

    def stored_call(self, task_id: str) -> tuple[list[Any], dict[str, Any], str | None] | None:
        """The exact args, kwargs and queue a task was sent with: from the index, else from Celery's extended
        result; None when neither kept them."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
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

    def info(self) -> BackendInfo:
        """Redis version and memory, all keys, and the tasks in tcel's index: one round trip."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.info("server")
            pipe.info("memory")
            pipe.dbsize()
            pipe.zcard(INDEX_KEY)
            server, memory, keys, indexed = pipe.execute()
        return BackendInfo(
            version=server.get("redis_version", "?"),
            memory_used=memory.get("used_memory_human", "?"),
            keys=keys,
            indexed_tasks=indexed,
        )

    def finished(self, ids: list[str], batch: int = 500) -> dict[str, dict[str, Any]]:
        """Celery's stored result of each task among `ids` that is ready, read with one MGET per batch."""
        ready = {}
        with self._errors():
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                for task_id, raw in zip(chunk, self.client.mget([META_KEY + task_id for task_id in chunk])):
                    meta = json.loads(raw) if raw else None
                    if meta and meta.get("status") in READY_STATES:
                        ready[task_id] = meta
        return ready

    def lookup(self, task_id: str) -> TaskRecord:
        records = self._records([task_id])
        if records[0] is None:
            raise NotFound(
                f"no task {task_id} in the backend at {mask_url(self.backend_url)}",
                hint="it was never sent to this stack, or its result has expired",
            )
        return records[0]

    def recent(self, limit: int = 20, state: str | None = None) -> list[TaskRecord]:
        """The newest tasks first; with a state, the newest `limit` in that state (reads at most the index)."""
        found: list[TaskRecord] = []
        page = limit if state is None else max(limit, 200)
        start = 0
        with self._errors():
            while len(found) < limit:
                ids = self.client.zrevrange(INDEX_KEY, start, start + page - 1)
                if not ids:
                    break
                records = [r for r in self._records(ids) if r is not None]
                found += [r for r in records if state is None or state.upper() in (r.state, r.shown_state)]
                start += page
        return found[:limit]

    def _records(self, ids: list[str]) -> list[TaskRecord | None]:
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for task_id in ids:
                pipe.get(META_KEY + task_id)
                pipe.hgetall(INFO_KEY + task_id)
            replies = pipe.execute()
        return [_record(task_id, replies[2 * i], replies[2 * i + 1]) for i, task_id in enumerate(ids)]

    @contextmanager
    def watch(self, task_id: str) -> Iterator[Callable[[float, Callable[[str], None]], TaskRecord]]:
        """Subscribe to the task's result channel (before it is sent); yield a function that waits for it."""
        with self._errors():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(META_KEY + task_id)

        def wait(timeout: float, on_state: Callable[[str], None]) -> TaskRecord:
            deadline = time.monotonic() + timeout
            state = "PENDING"
            next_get = 0.0
            with self._errors():
                while True:
                    now = time.monotonic()
                    if now >= next_get:  # covers a result stored before we subscribed
                        meta = self.client.get(META_KEY + task_id)
                        next_get = now + 1.0
                    else:
                        message = pubsub.get_message(timeout=min(0.25, max(0.0, deadline - now)))
                        meta = message["data"] if message else None
                    if meta:
                        state = json.loads(meta).get("status", state)
                        on_state(state)
                        if state in READY_STATES:
                            return self.lookup(task_id)
                    if time.monotonic() >= deadline:
                        raise WaitTimeout(
                            f"task {task_id} is still {state} after {timeout:g}s",
                            hint=f"it goes on: see 'tcel result {task_id}' later",
                        )

        try:
            yield wait
        finally:
            pubsub.close()


def _record(task_id: str, meta_json: str | None, info: dict[str, str]) -> TaskRecord | None:
    if meta_json is None and not info:
        return None
    meta = json.loads(meta_json) if meta_json else {}
    state = meta.get("status", "PENDING")
    result = meta.get("result")
    error = None
    if state in ("FAILURE", "REVOKED") and isinstance(result, dict):
        error = f"{result.get('exc_type', 'Error')}: {_exc_message(result.get('exc_message'))}"
        result = None
    elif state == "STARTED":
        result = None
    return TaskRecord(
        id=task_id,
        state=state,
        name=meta.get("name") or info.get("name"),
        args=info.get("args") or (shown(meta["args"]) if meta.get("args") is not None else None),
        result=result,
        error=error,
        traceback=meta.get("traceback"),
        worker=meta.get("worker") or info.get("worker") or None,
        sent=_float(info.get("sent")),
        received=_float(info.get("received")),
        started=_float(info.get("started")),
        finished=_float(info.get("finished")) or timestamp(meta.get("date_done")),
        kwargs=info.get("kwargs") or (shown(meta["kwargs"]) if meta.get("kwargs") else None),
        queue=info.get("queue") or meta.get("queue"),
        retry_of=info.get("retry_of"),
    )


def _exc_message(message: Any) -> str:
    if isinstance(message, (list, tuple)):
        return ", ".join(str(part) for part in message)
    return str(message)


def kept_call(args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The exact arguments as the index keeps them for `tcel retry`, or None when they are too big to keep."""
    parts, size = [], 0
    for part in json.JSONEncoder().iterencode({"args": args, "kwargs": kwargs}):  # stops early on big ones
        size += len(part)
        if size > CALL_KEPT_MAX:
            return None
        parts.append(part)
    return "".join(parts)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def timestamp(iso: str | None) -> float | None:
    """Seconds since the epoch of Celery's `date_done` (naive times are UTC)."""
    if not iso:
        return None
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def iso_time(epoch: float | None, sep: str = "T") -> str | None:
    """Local time with its offset, to the millisecond."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).astimezone().isoformat(sep=sep, timespec="milliseconds")
