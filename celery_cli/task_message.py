"""Task messages as Celery's protocol 2 has them (what `celery.app.amqp.AMQP.as_task_v2` builds): the body, the
headers a worker reads, and the bounded reprs of the arguments it logs; a message over the broker's limit is
refused before sending."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .names import MAX_MESSAGE_SIZE, PERIODIC_HEADER

if TYPE_CHECKING:
    import amqp

    from .task_call import TaskCall

ARGSREPR_MAX = 1024


def new_task_id() -> str:
    return str(uuid.uuid4())


def message(call: TaskCall, task_id: str, origin: str) -> tuple[amqp.Message, float, int]:
    """The task's message as Celery's protocol 2 has it, when it is sent, and the size of its body."""
    import amqp

    body, application_headers, properties, sent = parts(call, task_id, origin)
    message = amqp.Message(body, application_headers=application_headers, **properties)
    return message, sent, len(body)


def parts(call: TaskCall, task_id: str, origin: str) -> tuple[bytes, dict[str, Any], dict[str, Any], float]:
    """The task's message as Celery's protocol 2 has it, whatever the broker: its body, headers, properties (as
    kombu's `Producer.publish` takes them) and when it is sent."""
    body = json.dumps(
        [call.args, call.kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    ).encode()
    check_size(call.name, len(body))
    sent = time.time()
    properties: dict[str, Any] = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,  # persistent: survives a broker restart
        "correlation_id": task_id,
        "reply_to": "",
        **({"priority": call.priority} if call.priority is not None else {}),
    }
    return body, headers(call, task_id, sent, origin, small=len(body) <= ARGSREPR_MAX), properties, sent


def headers(call: TaskCall, task_id: str, sent: float, origin: str, small: bool = False) -> dict[str, Any]:
    """The headers `celery.app.amqp.AMQP.as_task_v2` builds for the task, sent at `sent` from `origin`."""

    def later(seconds: float) -> datetime:
        return datetime.fromtimestamp(sent, UTC) + timedelta(seconds=seconds)

    eta = later(call.countdown) if call.countdown else call.eta
    expires = later(call.expires) if isinstance(call.expires, (int, float)) else call.expires
    periodic = {PERIODIC_HEADER: call.periodic} if call.periodic else {}
    return {
        **periodic,
        "lang": "py",
        "task": call.name,
        "id": task_id,
        "shadow": None,
        "eta": eta.isoformat() if eta else None,
        "expires": expires.isoformat() if expires else None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": bounded_repr(call.args, small=small),
        "kwargsrepr": bounded_repr(call.kwargs, small=small),
        "origin": origin,
        "ignore_result": None,  # as Celery sends it: the task's own ignore_result decides
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }


def check_size(name: str, size: int) -> None:
    """Refuse, before sending, a message over the largest the broker takes (tcel writes that limit into the
    broker's configuration; it is also RabbitMQ 4's default)."""
    if size > MAX_MESSAGE_SIZE:
        raise UsageError(
            f"{name} was not sent: its message is {size / 2**20:.1f} MiB, over the broker's limit of "
            f"{MAX_MESSAGE_SIZE / 2**20:.0f} MiB",
            hint="pass large data by reference (a file or URL the workers can read), or split it into tasks",
        )


def bounded_repr(value: Any, limit: int = ARGSREPR_MAX, small: bool = False) -> str:
    """The `argsrepr`/`kwargsrepr` a worker logs and shows: `repr(value)` when it fits `limit`, else its
    start and "...". Built item by item up to the limit, so megabytes of arguments are never turned into
    one string (Celery's saferepr bounds it too, but importing it costs more than tcel's whole send).
    `small` says the value is known to be short (its JSON fits `limit`; the repr of a value read from JSON is
    about as long as its JSON): it is then taken whole by `repr`, which is ten times faster for a few numbers."""
    text = repr(value) if small else _repr_prefix(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _repr_prefix(value: Any, budget: int) -> str:
    """`repr(value)`, or a prefix of it at least `budget` characters long."""
    if type(value) in (list, tuple, dict) and value:
        items = value.items() if isinstance(value, dict) else value
        brackets: dict[type, str] = {list: "[]", tuple: "()", dict: "{}"}
        opening, closing = brackets[type(value)][0], brackets[type(value)][1]
        text = opening
        for index, item in enumerate(items):
            if len(text) >= budget:
                return text
            part = (
                _repr_prefix(item[0], budget) + ": " + _repr_prefix(item[1], budget - len(text))
                if isinstance(value, dict)
                else _repr_prefix(item, budget - len(text))
            )
            text += (", " if index else "") + part
        return text + ("," if type(value) is tuple and len(value) == 1 else "") + closing
    if isinstance(value, str) and len(value) > budget:
        return repr(value[:budget])[:-1]  # the opening quote Python would pick may differ: shown only cut
    return repr(value)
