"""The task names the running workers have registered and the queues they consume, cached per stack for a
minute, so that `call` checks a name without asking the workers each time and shell completion never asks.

Celery acknowledges and drops a message whose task no worker has registered, so `call` refuses such a name.
The cache is a small JSON file in the user's state directory, named after a hash of the broker URL; `up` and
`scale` forget it when they change the workers, and so do the control commands that change what workers
consume. A name missing from the cache is asked of the workers before it is refused, so a stale cache can
delay a refusal by at most a minute, never refuse a good name.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import TcelError, UsageError
from .settings import user_state_dir

CACHE_SECONDS = 60.0
ASK_TIMEOUT = 1.0  # a broadcast to unknown workers waits this long; an addressed one returns when all answered


@dataclass
class Registry:
    """What the workers that answered said, and when."""

    workers: list[str]
    tasks: list[str]
    queues: list[str]
    taken_at: float


def cache_file(broker_url: str) -> Path:
    return user_state_dir() / "cache" / f"workers-{hashlib.sha256(broker_url.encode()).hexdigest()[:16]}.json"


def cached(broker_url: str, max_age: float | None = CACHE_SECONDS) -> Registry | None:
    """The cached registry of the stack at `broker_url`, if there is one younger than `max_age` seconds."""
    try:
        registry = Registry(**json.loads(cache_file(broker_url).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if max_age is not None and not 0 <= time.time() - registry.taken_at <= max_age:
        return None
    return registry


def ask(broker_url: str, nodes: list[str] | None) -> Registry:
    """Ask the workers (the given nodes, or whoever answers) what they have registered and consume; cache it."""
    from .remote_control import Control

    with Control(broker_url) as control:
        registered = control.inspect("registered", nodes, ASK_TIMEOUT)
        answering = sorted(registered)
        consumed = control.inspect("active_queues", answering, ASK_TIMEOUT)
    registry = Registry(
        workers=answering,
        tasks=sorted({name.split(" ")[0] for names in registered.values() for name in names or []}),
        queues=sorted({queue["name"] for queues in consumed.values() for queue in queues or []}),
        taken_at=time.time(),
    )
    _save(broker_url, registry)
    return registry


def forget(broker_url: str) -> None:
    """Drop the cache: the workers, or what they consume, have changed."""
    cache_file(broker_url).unlink(missing_ok=True)


def knowing(broker_url: str, name: str, queue: str, nodes: Callable[[], list[str] | None]) -> Registry:
    """The registry as cached when it knows `name` and `queue`, else as the running workers tell it now."""
    registry = cached(broker_url)
    if registry is None or name not in registry.tasks or queue not in registry.queues:
        registry = ask(broker_url, nodes())
    return registry


def check(broker_url: str, name: str, queue: str, nodes: Callable[[], list[str] | None]) -> str | None:
    """Refuse (exit 2) a task name no running worker has registered; return a warning when no worker consumes
    the queue (the task waits there until one does)."""
    registry = knowing(broker_url, name, queue, nodes)
    if not registry.workers:
        raise UsageError(
            f"no worker answered, so task {name!r} cannot be checked",
            hint=(
                f"start the workers with 'tcel up', or pass --no-check to send it anyway (it waits in queue {queue!r})"
            ),
        )
    if name not in registry.tasks:
        raise UsageError(f"no running worker knows task {name!r}", hint=_known(name, registry.tasks))
    if queue not in registry.queues:
        return (
            f"no running worker consumes queue {queue!r}: the task waits there until one does "
            f"(tcel up --queues ..., or tcel control add-consumer {queue})"
        )
    return None


def refuse_unknown_template_task(broker_url: str, name: str, nodes: Callable[[], list[str] | None]) -> None:
    """For `add` and `tsum`, which send tcel's template's tasks: refuse (exit 2) when the running workers answer
    and none knows `name` (they run a project's own app); when none answers, the task is sent to wait for them."""
    registry = cached(broker_url)
    if registry is None or name not in registry.tasks:
        try:
            registry = ask(broker_url, nodes())
        except TcelError:  # the broker does not answer: sending says so, as it did before this check
            return
    if registry.workers and name not in registry.tasks:
        raise UsageError(
            f"the workers' app has no task {name!r} (a task of tcel's template): send the app's own with 'tcel call'",
            hint=_known(name, registry.tasks).replace("--no-check", "'tcel call NAME ARGS --no-check'"),
        )


def _known(name: str, tasks: list[str], way_out: str = "(pass --no-check to send it anyway)") -> str:
    return f"{registered(name, tasks)} {way_out}"


def registered(name: str, tasks: list[str]) -> str:
    """The app's own registered tasks, with the one closest to `name` first suggested."""
    own = [task for task in tasks if not task.startswith("celery.")]
    close = difflib.get_close_matches(name, tasks, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return f"{guess}registered: {', '.join(own) or 'none'}"


def _save(broker_url: str, registry: Registry) -> None:
    path = cache_file(broker_url)
    try:
        path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # beside the credentials: owner only
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(json.dumps(asdict(registry)))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs the next call an ask
