"""Options shared by several commands, and `which_stack`, the one "which stack" group every command takes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..endpoints import Target

ProjectDir = Annotated[
    Path | None,
    typer.Option(
        "--project-dir",
        envvar="TCEL_PROJECT_DIR",
        file_okay=False,
        help="The project's directory: its Celery app, its files, its Dockerfile if any (default: the current one).",
    ),
]
ProjectName = Annotated[
    str | None,
    typer.Option("--project-name", "-p", help="Project name (default: TCEL_PROJECT_NAME, else the directory's name)."),
]
BrokerUrl = Annotated[
    str | None,
    typer.Option(help="Broker to send to [env CELERY_BROKER_URL; default: the stack 'tcel up' started here]."),
]
BackendUrl = Annotated[
    str | None,
    typer.Option(help="Redis result backend [env CELERY_RESULT_BACKEND_URL; default: the stack's]."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout, for scripts.")]

# Waiting for a task (add, tsum, bench): --timeout always bounds that wait.
Wait = Annotated[bool, typer.Option("--wait", "-w", help="Wait for the result and show it.")]
TaskTimeout = Annotated[
    float, typer.Option("--timeout", min=0.1, help="With --wait: stop waiting after this many seconds (exit 6).")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the task id.")]
# What workers consume (up, scale).
Queues = Annotated[
    str | None,
    typer.Option(
        metavar="Q1,Q2", help="Queues the workers consume (default: as running, else Celery's default 'celery')."
    ),
]
# The workers' pool limits (up, scale): Celery's worker options, passed as CELERY_WORKER_MAX_*_PER_CHILD
MaxTasksPerChild = Annotated[
    int | None,
    typer.Option(
        min=0,
        metavar="N",
        help="Replace a worker's pool process after N tasks (Celery's option; 0: never) [default: as last started].",
    ),
]
MaxMemoryPerChild = Annotated[
    int | None,
    typer.Option(
        min=0,
        metavar="KIB",
        help="Replace a worker's pool process once it holds more than KIB kilobytes of memory, after its task "
        "(Celery's option; 0: no limit) [default: as last started].",
    ),
]
# Waiting for the stack (up, scale); --timeout is the spelling of earlier versions.
ReadyTimeout = Annotated[
    float, typer.Option("--ready-timeout", "--timeout", min=1, help="Seconds to wait until every service answers.")
]

_PROJECT_OPTIONS = {"project_dir": ProjectDir, "project_name": ProjectName}
_URL_OPTIONS = {"broker": {"broker_url": BrokerUrl}, "backend": {"backend_url": BackendUrl}}


def which_stack(*services: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the "which stack" options: --project-dir and --project-name, and --broker-url or
    --backend-url for the services it talks to directly; the command gets them as one `target: Target`."""
    options = {**_PROJECT_OPTIONS, **{k: v for service in services for k, v in _URL_OPTIONS[service].items()}}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "target"]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
            for name, annotation in options.items()
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            chosen = {name: kwargs.pop(name, None) for name in options}
            return command(*args, target=Target(**chosen), **kwargs)

        # Typer reads the parameters from the signature: show it the command's own and the group's
        run.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in own + added}
        return run

    return decorate
