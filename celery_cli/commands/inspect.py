"""`tcel inspect ...`: ask the workers what they hold, know and run, as Celery's `celery inspect` does, addressed
to the stack's workers so it returns as soon as they have answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..endpoints import Target
from ..errors import ExitCode
from ..output import Output
from .completion import workers as worker_names
from .options import Json, which_stack

inspect_app = typer.Typer(
    name="inspect",
    help="Ask the workers what they run, hold, know and are set to (exit 1 when one does not answer).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
Worker = Annotated[
    str | None,
    typer.Option(
        "--worker",
        "-w",
        metavar="NAME",
        help="Ask only this worker (worker-2 or celery@worker-2).",
        autocompletion=worker_names,
    ),
]
AnswerTimeout = Annotated[
    float, typer.Option("--timeout", min=0.1, max=60, help="Seconds to wait for the workers' answers.")
]

METHODS = {
    "active": "Tasks the workers are running now.",
    "reserved": "Tasks the workers have taken from the queue but not started.",
    "scheduled": "Tasks the workers hold until their ETA or countdown.",
    "registered": "Task names each worker has registered (what 'call' can send).",
    "revoked": "Task ids the workers keep as revoked (in memory: a restarted worker forgets them).",
    "stats": "Each worker's process id, uptime, pool size now, prefetch and tasks processed.",
    "conf": "Each worker's settings that differ from Celery's defaults (secrets masked).",
}


SAFE = {"active": (True,)}  # argument reprs (bounded) rather than the arguments, however big


def ask(target: Target, method: str, worker: str | None, timeout: float, json: bool, *args: Any) -> None:
    """Ask the addressed workers; show the answers, and who did not answer."""
    from .. import tables
    from .. import workers as stack_workers

    out = Output(json)
    found = stack_workers.inspect(target, method, worker, timeout, *args)
    if json:
        out.data({"method": method, "workers": found.replies, "no_answer": found.silent})
    elif any(found.replies.values()):
        out.render(tables.inspection(method, found.replies))
    else:
        out.info(f"inspect {method}: nothing on {', '.join(sorted(found.replies)) or 'any worker'}")
    for node in found.silent:
        out.warn(f"{node} did not answer within {timeout:g}s")
    if found.silent:
        raise typer.Exit(int(ExitCode.FAILURE))


def _method_command(method: str, summary: str) -> Callable[..., None]:
    def command(target: Target, worker: Worker = None, timeout: AnswerTimeout = 1.0, json: Json = False) -> None:
        ask(target, method, worker, timeout, json, *SAFE.get(method, ()))

    command.__name__ = method
    command.__doc__ = summary
    return which_stack("broker")(command)


@which_stack("broker", "backend")
def task(
    target: Target,
    task_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Task ids, or unique starts of them.")],
    worker: Worker = None,
    timeout: AnswerTimeout = 1.0,
    json: Json = False,
) -> None:
    """Which worker holds these tasks now, and in what state (active, reserved, scheduled)."""
    from ..task_ids import resolve_at

    backend = target.endpoints(backend_required=False).backend_url
    ask(target, "query_task", worker, timeout, json, *(resolve_at(backend, task_id) for task_id in task_ids))


for _method, _summary in METHODS.items():
    inspect_app.command(_method)(_method_command(_method, _summary))
inspect_app.command("task")(task)


def register(app: typer.Typer) -> None:
    app.add_typer(inspect_app)
