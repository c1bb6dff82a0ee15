"""What `tcel add` and `tcel tsum` do: send one task, index it, and wait for its result if asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .connection import Endpoints
from .errors import ServiceUnreachable
from .results import ResultStore, TaskRecord
from .send import Sender


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


def _index(store: ResultStore, task_id: str, name: str, args: list[Any], sent: float) -> str | None:
    """Record the task as sent, so it shows as queued before a worker has it; a failure is only a warning."""
    try:
        store.record_sent(task_id, name, args, sent)
    except ServiceUnreachable as error:
        return f"task {task_id} was sent, but {error.message}"
    return None
