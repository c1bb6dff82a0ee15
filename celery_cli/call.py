"""Calling a task, the one path every sending command takes (`call`, its presets `add` and `tsum`, and
`retry`): what a call is, sending it, indexing it, waiting for it if asked, and what its end means."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import task_index
from .endpoints import Endpoints
from .errors import BackendRefused, NotFound, ServiceUnreachable, TaskFailed, UsageError
from .names import QUEUE
from .publisher import Sender
from .result_follower import watch
from .result_store import ResultStore
from .task_call import TaskCall
from .task_record import READY_STATES, TaskRecord

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
    call: TaskCall,
    task_id: str,
    wait: float | None = None,
    on_state: Callable[[dict[str, Any]], None] = lambda meta: None,
) -> Submitted:
    """Send the task; with `wait` (seconds), follow its states and return it finished.

    The result channel is subscribed to before sending, so no state is missed. Ctrl-C while waiting raises
    KeyboardInterrupt; the task goes on.
    """
    if endpoints.backend_url is None:
        with Sender(endpoints) as sender:
            sender.send(call, task_id)
        return Submitted(task_id, warning=NO_BACKEND)
    store = ResultStore(endpoints.backend_url)
    _ = store.client  # a malformed backend URL is refused here, before anything is sent
    if wait is None:
        with Sender(endpoints) as sender:
            sent = sender.send(call, task_id)
        return Submitted(task_id, warning=_index(store, task_id, call, sent))
    with watch(store, task_id) as wait_for, Sender(endpoints) as sender:
        sent = sender.send(call, task_id)
        warning = _index(store, task_id, call, sent)
        try:
            return Submitted(task_id, wait_for(wait, on_state), warning)
        except ServiceUnreachable as error:  # the task is queued: say which, so its result can be read later
            raise ServiceUnreachable(
                f"task {task_id} was sent, but waiting for its result failed: {error.message}",
                hint=f"it goes on: see 'tcel result {task_id}' once the backend answers ('tcel up' starts it)",
            ) from None


def retry_call(store: ResultStore, task_id: str) -> TaskCall:
    """The call that sends a finished task again: its stored name, args, kwargs and queue."""
    record = store.lookup(task_id)
    if record.state not in READY_STATES:
        raise UsageError(
            f"task {task_id} is {record.state}, not finished",
            hint="only a task that succeeded, failed or was revoked is sent again; see 'tcel result " + task_id + "'",
        )
    stored = task_index.stored_call(store, task_id)
    if stored is None or not record.name:
        raise NotFound(
            f"the backend no longer has the arguments of task {task_id}",
            hint="they are kept with its result for a day, and only up to 64 KiB",
        )
    args, kwargs, queue = stored
    return TaskCall(record.name, args, kwargs, queue=queue or QUEUE, retry_of=task_id)


def failure(record: TaskRecord) -> TaskFailed | None:
    """What a waited-for task's end means: None when it succeeded, else the error to exit with (9)."""
    if record.state == "SUCCESS":
        return None
    if record.state == "FAILURE":
        return TaskFailed(f"task {record.id} ({record.name}) failed: {record.error}")
    return TaskFailed(f"task {record.id} ({record.name}) ended {record.state}")


def _index(store: ResultStore, task_id: str, call: TaskCall, sent: float) -> str | None:
    """Record the task as sent, so it shows as queued before a worker has it; a failure is only a warning."""
    try:
        task_index.record_sent(
            store,
            task_id,
            call.name,
            call.args,
            call.kwargs,
            call.queue,
            sent,
            retry_of=call.retry_of,
            periodic=call.periodic,
            job=call.job,
        )
    except (ServiceUnreachable, BackendRefused) as error:  # the task is on its way all the same
        return f"task {task_id} was sent, but {error.message}"
    return None
