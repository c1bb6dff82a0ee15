"""Calling a task, the one path every sending command takes: send it, index it, wait for it if asked, and
decide what its end means for the exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .endpoints import Endpoints
from .errors import ServiceUnreachable, TaskFailed
from .publisher import Sender
from .result_store import ResultStore, TaskRecord


NO_BACKEND = (
    "no result backend is known here, so its result cannot be looked up: "
    "pass --backend-url or set CELERY_RESULT_BACKEND_URL to follow it"
)


@dataclass
class Submitted:
    task_id: str
    record: TaskRecord | None = None  # the finished task, when waited for
    warning: str | None = None  # sent, but something after the send went wrong


def submit(
    endpoints: Endpoints,
    name: str,
    args: list[Any],
    task_id: str,
    wait: float | None = None,
    on_state: Callable[[str], None] = lambda state: None,
) -> Submitted:
    """Send the task; with `wait` (seconds), follow its states and return it finished.

    The result channel is subscribed to before sending, so no state is missed. Ctrl-C while waiting raises
    KeyboardInterrupt; the task goes on.
    """
    if endpoints.backend_url is None:
        with Sender(endpoints) as sender:
            sender.send(name, args, task_id)
        return Submitted(task_id, warning=NO_BACKEND)
    store = ResultStore(endpoints.backend_url)
    store.client  # a malformed backend URL is refused here, before anything is sent
    if wait is None:
        with Sender(endpoints) as sender:
            sent = sender.send(name, args, task_id)
        return Submitted(task_id, warning=_index(store, task_id, name, args, sent))
    with store.watch(task_id) as wait_for, Sender(endpoints) as sender:
        sent = sender.send(name, args, task_id)
        warning = _index(store, task_id, name, args, sent)
        return Submitted(task_id, wait_for(wait, on_state), warning)


def failure(record: TaskRecord) -> TaskFailed | None:
    """What a waited-for task's end means: None when it succeeded, else the error to exit with (9)."""
    if record.state == "SUCCESS":
        return None
    if record.state == "FAILURE":
        return TaskFailed(f"task {record.id} ({record.name}) failed: {record.error}")
    return TaskFailed(f"task {record.id} ({record.name}) ended {record.state}")


def _index(store: ResultStore, task_id: str, name: str, args: list[Any], sent: float) -> str | None:
    """Record the task as sent, so it shows as queued before a worker has it; a failure is only a warning."""
    try:
        store.record_sent(task_id, name, args, sent)
    except ServiceUnreachable as error:
        return f"task {task_id} was sent, but {error.message}"
    return None
