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
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .credentials import mask_url
from .errors import NotFound, ServiceUnreachable, UsageError, WaitTimeout, start_or_check, unreachable
from .names import CALL_KEPT_MAX, INDEX_KEY, INDEX_TTL, INFO_KEY, JOB_KEY
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
    job: dict[str, Any] | None = None  # a streamed sum's final task: numbers, chunks, and (looked up) chunk ids

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
                self.backend_url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
            )
        except ValueError as exc:
            raise UsageError(
                f"invalid backend URL {mask_url(self.backend_url)}: {exc}", hint="give a redis:// URL"
            ) from None

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
        self,
        task_id: str,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        queue: str,
        sent: float,
        retry_of: str | None = None,
        job: dict[str, Any] | None = None,
    ) -> None:
        """Put a task tcel sent into the index, so it shows as queued before any worker has it, and keep what
        `tcel retry` needs to send it again; for a streamed sum's final task, what the job was and its chunk
        tasks' ids (a list of its own, read only when that one task is looked up)."""
        fields: dict[str, Any] = {"name": name, "args": shown(args), "queue": queue, "sent": sent}
        if kwargs:
            fields["kwargs"] = shown(kwargs)
        call = kept_call(args, kwargs)
        if call is not None:
            fields["call"] = call
        if retry_of:
            fields["retry_of"] = retry_of
        chunk_ids = []
        if job is not None:
            chunk_ids = job.get("chunk_ids", [])
            fields["job"] = json.dumps({key: value for key, value in job.items() if key != "chunk_ids"})
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(INDEX_KEY, {task_id: sent}, nx=True)
            pipe.hset(INFO_KEY + task_id, mapping=fields)
            pipe.expire(INFO_KEY + task_id, INDEX_TTL)
            for start in range(0, len(chunk_ids), 1000):
                pipe.rpush(JOB_KEY + task_id, *chunk_ids[start : start + 1000])
            if chunk_ids:
                pipe.expire(JOB_KEY + task_id, INDEX_TTL)
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
                for task_id, raw in zip(
                    chunk, self.client.mget([META_KEY + task_id for task_id in chunk]), strict=False
                ):
                    meta = json.loads(raw) if raw else None
                    if meta and meta.get("status") in READY_STATES:
                        ready[task_id] = meta
        return ready

    def lookup(self, task_id: str) -> TaskRecord:
        """One task, and for a streamed sum's final task the ids of its chunk tasks."""
        record = self._records([task_id])[0]
        if record is None:
            raise NotFound(
                f"no task {task_id} in the backend at {mask_url(self.backend_url)}",
                hint="it was never sent to this stack, or its result has expired",
            )
        if record.job is not None:
            with self._errors():
                record.job["chunk_ids"] = self.client.lrange(JOB_KEY + task_id, 0, -1)
        return record

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
        with self.follower() as follower:
            follower.follow(task_id)

            def wait(timeout: float, on_state: Callable[[str], None]) -> TaskRecord:
                deadline = time.monotonic() + timeout
                state = "PENDING"
                while True:
                    for meta in follower.next(deadline, lambda _, seen: on_state(seen)).values():
                        state = meta.get("status", state)
                        if state in READY_STATES:
                            return self.lookup(task_id)
                    if time.monotonic() >= deadline:
                        state = follower.states.get(task_id, state)
                        forced = self.forced_backend() if state == "PENDING" else None
                        if forced is not None:
                            raise WaitTimeout(
                                f"task {task_id} cannot be seen: the workers' {forced}",
                                hint="tcel sets CELERY_RESULT_BACKEND for the workers; an app that sets its "
                                "backend in code after reading it, or a task's own backend, is not overridden",
                            )
                        raise WaitTimeout(
                            f"task {task_id} is still {state} after {timeout:g}s",
                            hint=f"it goes on: see 'tcel result {task_id}' later",
                        )

            yield wait

    def forced_backend(self) -> str | None:
        """What the workers report (tcel's worker side) when their app stores results elsewhere than here."""
        from .worker_report import forced_backend_message, read

        with self._errors():
            forced = next((r for r in read(self.client) if r.backend_forced), None)
        return forced_backend_message(forced) if forced is not None else None

    @contextmanager
    def follower(self) -> Iterator[Follower]:
        """A Follower on this backend, closed afterwards."""
        with self._errors():
            follower = Follower(self)
        try:
            yield follower
        finally:
            follower.close()


class Follower:
    """Follows tasks until they are finished: subscribed to their result channels (Celery's Redis backend
    publishes every state there, so a result shows as soon as it is stored), with a read of the stored results
    every second for anything published before the subscription. When the backend drops the subscription
    (Redis does so to a subscriber whose output buffer overruns, or on CLIENT KILL), it goes on by reading the
    stored results several times a second: a dropped subscription alone is no reason to give up."""

    READ_EVERY = 1.0
    READ_EVERY_UNSUBSCRIBED = 0.1

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.pubsub = store.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.ping()  # connects now: a backend that does not answer is refused before anything is sent
        self.dropped: str | None = None  # why the backend dropped the subscription, once it has
        self.states: dict[str, str] = {}  # every followed task not yet seen finished, and its last state
        self._next_read = 0.0

    def follow(self, task_id: str) -> None:
        """Follow a task from now on (call it before the task is sent, so that no state is missed)."""
        self.states[task_id] = "PENDING"
        if self.dropped is None:
            try:
                self.pubsub.subscribe(META_KEY + task_id)
            except self._dropping() as exc:
                self._drop(exc)

    def next(self, deadline: float, on_state: Callable[[str, str], None]) -> dict[str, dict[str, Any]]:
        """Wait until a followed task is finished, or until `deadline` (time.monotonic()); return the stored
        results of those finished ({} at the deadline). `on_state(task id, state)` hears every state seen."""
        import redis

        while True:
            now = time.monotonic()
            if now >= self._next_read:
                self._next_read = now + (self.READ_EVERY if self.dropped is None else self.READ_EVERY_UNSUBSCRIBED)
                metas = self._read()
            elif self.dropped is None:
                try:
                    message = self.pubsub.get_message(timeout=min(0.25, max(0.0, min(deadline, self._next_read) - now)))
                except self._dropping() as exc:
                    self._drop(exc)
                    continue
                except redis.exceptions.RedisError as exc:
                    raise unreachable(
                        "backend", mask_url(self.store.backend_url), exc, hint=start_or_check("backend")
                    ) from None
                metas = {}
                if message and message.get("type") == "message":
                    metas = {message["channel"][len(META_KEY) :]: json.loads(message["data"])}
            else:
                time.sleep(max(0.0, min(deadline, self._next_read) - now))
                metas = {}
            ready = {}
            for task_id, meta in metas.items():
                if task_id not in self.states:
                    continue
                state = self.states[task_id] = meta.get("status", "PENDING")
                on_state(task_id, state)
                if state in READY_STATES:
                    ready[task_id] = meta
                    self._unfollow(task_id)
            if ready or time.monotonic() >= deadline:
                return ready

    def _read(self) -> dict[str, dict[str, Any]]:
        """The stored results of the followed tasks, read with one MGET."""
        import redis

        ids = list(self.states)
        if not ids:
            return {}
        try:
            raw = self.store.client.mget([META_KEY + task_id for task_id in ids])
        except redis.exceptions.RedisError as exc:
            if self.dropped is None:
                raise unreachable(
                    "backend", mask_url(self.store.backend_url), exc, hint=start_or_check("backend")
                ) from None
            raise ServiceUnreachable(
                f"the backend at {mask_url(self.store.backend_url)} dropped tcel's subscription to the results "
                f"({self.dropped}), and then did not answer a read either ({exc or type(exc).__name__})",
                hint=start_or_check("backend"),
            ) from None
        return {task_id: json.loads(meta) for task_id, meta in zip(ids, raw, strict=False) if meta}

    def _unfollow(self, task_id: str) -> None:
        del self.states[task_id]
        if self.dropped is None:
            try:
                self.pubsub.unsubscribe(META_KEY + task_id)
            except self._dropping() as exc:
                self._drop(exc)

    @staticmethod
    def _dropping() -> tuple[type[Exception], ...]:
        import redis

        return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

    def _drop(self, exc: Exception) -> None:
        self.dropped = str(exc) or type(exc).__name__
        self._next_read = 0.0  # read at once: whatever was published meanwhile is lost
        with suppress(Exception):
            self.pubsub.close()

    def close(self) -> None:
        with suppress(Exception):
            self.pubsub.close()


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
        job=json.loads(info["job"]) if info.get("job") else None,
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
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def iso_time(epoch: float | None, sep: str = "T") -> str | None:
    """Local time with its offset, to the millisecond."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).astimezone().isoformat(sep=sep, timespec="milliseconds")
