"""Following tasks until they are finished, through the result backend's channels: one task (`watch`, which
`--wait` uses) or many (a streamed sum's)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from .credentials import mask_url
from .errors import ServiceUnreachable, WaitTimeout, start_or_check, unreachable
from .names import RESULT_KEY as META_KEY
from .result_store import ResultStore
from .task_record import READY_STATES, TaskRecord


@contextmanager
def watch(
    store: ResultStore, task_id: str
) -> Iterator[Callable[[float, Callable[[dict[str, Any]], None]], TaskRecord]]:
    """Subscribe to the task's result channel (before it is sent); yield a function that waits for it."""
    with following(store) as follower:
        follower.follow(task_id)

        def wait(timeout: float, on_state: Callable[[dict[str, Any]], None]) -> TaskRecord:
            """Wait until the task ends; `on_state` hears every state stored for it (its meta, as Celery keeps it)."""
            deadline = time.monotonic() + timeout
            state = "PENDING"
            while True:
                for meta in follower.next(deadline, lambda _, seen: on_state(seen)).values():
                    state = meta.get("status", state)
                    if state in READY_STATES:
                        return store.lookup(task_id)
                if time.monotonic() >= deadline:
                    state = follower.states.get(task_id, state)
                    forced = forced_backend(store) if state == "PENDING" else None
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


def forced_backend(store: ResultStore) -> str | None:
    """What the workers report (tcel's worker side) when their app stores results elsewhere than here."""
    from .worker_report import forced_backend_message, read

    with store.errors():
        forced = next((r for r in read(store.client) if r.backend_forced), None)
    return forced_backend_message(forced) if forced is not None else None


@contextmanager
def following(store: ResultStore) -> Iterator[Follower]:
    """A Follower on the backend, closed afterwards."""
    with store.errors():
        follower = Follower(store)
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

    def next(self, deadline: float, on_state: Callable[[str, dict[str, Any]], None]) -> dict[str, dict[str, Any]]:
        """Wait until a followed task is finished, or until `deadline` (time.monotonic()); return the stored
        results of those finished ({} at the deadline). `on_state(task id, meta)` hears every state seen (the
        stored meta: status, and the result or a custom state's meta)."""
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
                on_state(task_id, meta)
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
