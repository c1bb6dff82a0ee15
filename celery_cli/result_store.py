"""Reading task results from the Redis result backend: one task, the recent ones, or waiting for one.

Celery's Redis backend stores each result as JSON under `celery-task-meta-<id>` and publishes it on a channel
of the same name; the worker's worker_hooks module keeps `tcel:tasks` (ids by time) and `tcel:task:<id>`
(name, args, times): see names.py. Reading them with redis-py directly costs one round trip and no Celery
import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .credentials import mask_url
from .errors import NotFound, ServiceUnreachable, UsageError, start_or_check, unreachable
from .names import FAILED_KEY, INDEX_KEY, INFO_KEY, JOB_KEY
from .names import RESULT_KEY as META_KEY
from .task_record import READY_STATES, BackendInfo, TaskRecord, record

if TYPE_CHECKING:
    import redis


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
    def errors(self) -> Iterator[None]:
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

    def info(self) -> BackendInfo:
        """Redis version and memory, all keys, and the tasks and failures in tcel's indexes: one round trip."""
        with self.errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.info("server")
            pipe.info("memory")
            pipe.dbsize()
            pipe.zcard(INDEX_KEY)
            pipe.zcard(FAILED_KEY)
            server, memory, keys, indexed, failures = pipe.execute()
        return BackendInfo(
            version=server.get("redis_version", "?"),
            memory_used=memory.get("used_memory_human", "?"),
            keys=keys,
            indexed_tasks=indexed,
            indexed_failures=failures,
        )

    def finished(self, ids: list[str], batch: int = 500) -> dict[str, dict[str, Any]]:
        """Celery's stored result of each task among `ids` that is ready, read with one MGET per batch."""
        ready = {}
        with self.errors():
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
        record = self.records([task_id])[0]
        if record is None:
            raise NotFound(
                f"no task {task_id} in the backend at {mask_url(self.backend_url)}",
                hint="it was never sent to this stack, or its result has expired",
            )
        if record.job is not None:
            with self.errors():
                record.job["chunk_ids"] = self.client.lrange(JOB_KEY + task_id, 0, -1)
        return record

    def recent(
        self,
        limit: int = 20,
        state: str | None = None,
        admits: Callable[[TaskRecord], bool] | None = None,
        since: float | None = None,
    ) -> list[TaskRecord]:
        """The newest tasks first; with a state (or `admits`), the newest `limit` that pass; with `since`, only
        tasks indexed since then (reads at most the index)."""
        found: list[TaskRecord] = []
        page = limit if state is None and admits is None else max(limit, 200)
        start = 0
        lowest = since if since is not None else "-inf"
        with self.errors():
            while len(found) < limit:
                ids = [str(i) for i in self.client.zrevrangebyscore(INDEX_KEY, "+inf", lowest, start=start, num=page)]
                if not ids:
                    break
                records = [r for r in self.records(ids) if r is not None]
                found += [
                    r
                    for r in records
                    if (state is None or state.upper() in (r.state, r.shown_state)) and (admits is None or admits(r))
                ]
                start += page
        return found[:limit]

    def records(self, ids: list[str]) -> list[TaskRecord | None]:
        """What is known of each task among `ids` (None for one nobody knows), in one round trip."""
        with self.errors():
            pipe = self.client.pipeline(transaction=False)
            for task_id in ids:
                pipe.get(META_KEY + task_id)
                pipe.hgetall(INFO_KEY + task_id)
            replies = pipe.execute()
        return [record(task_id, replies[2 * i], replies[2 * i + 1]) for i, task_id in enumerate(ids)]
