"""`tcel call` (any task by name), its presets `tcel add` and `tcel tsum` (the tutorial's tasks), and
`tcel retry`: send a task and, with --wait, show how it ends."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..names import QUEUE
from ..output import Output
from .completion import task_names
from .options import Json, Quiet, TaskTimeout, Wait, which_stack

if TYPE_CHECKING:
    from ..call import TaskCall

NUMBERS_CONTEXT = {"ignore_unknown_options": True}  # so that -3 is a number, not an option
NoCheck = Annotated[
    bool,
    typer.Option("--no-check", help="Send even if no running worker has registered the task (before workers run)."),
]


@which_stack("broker", "backend")
def call(
    target: Target,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The task's registered name, such as tasks.add.",
                            autocompletion=task_names, show_default=False)
    ],
    args: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="[ARG]...", help="Positional arguments, each a JSON literal: 3, '\"text\"', '[1, 2]'.",
                       show_default=False),
    ] = None,
    kwargs: Annotated[Optional[str], typer.Option(metavar="JSON", help="Keyword arguments, a JSON object.")] = None,
    raw_strings: Annotated[
        bool, typer.Option("--raw-strings", help="Send an ARG that is not JSON as a string instead of refusing it.")
    ] = False,
    countdown: Annotated[Optional[str], typer.Option(metavar="S", help="Run no earlier than S seconds from now.")] = None,
    eta: Annotated[
        Optional[str],
        typer.Option(metavar="ISO-8601", help="Run no earlier than then (local time unless an offset is given)."),
    ] = None,
    expires: Annotated[
        Optional[str],
        typer.Option(metavar="S|ISO-8601", help="Drop the task unless it starts within S seconds, or by then."),
    ] = None,
    queue: Annotated[str, typer.Option("--queue", "-Q", help="The queue to send it to.")] = QUEUE,
    priority: Annotated[
        Optional[int], typer.Option(min=0, max=9, help="Message priority 0-9 (queues declared with x-max-priority).")
    ] = None,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send any task by name, its arguments as JSON: call tasks.tsum '[1, 2]' --wait.

    Each ARG is a JSON literal (a word that is not JSON is refused, unless --raw-strings). A name no running
    worker has registered is refused (exit 2) with the names they know, since Celery would drop it; --no-check
    sends it anyway.
    """
    from ..call import TaskCall
    from ..task_args import parse_expires, parse_json_args, parse_kwargs, parse_queue, parse_seconds, parse_time

    if not name.strip() or name.startswith("-"):
        raise UsageError(f"invalid task name {name!r}", hint="give the registered name, such as tasks.add")
    task = TaskCall(
        name,
        parse_json_args(args or [], raw_strings),
        parse_kwargs(kwargs),
        queue=parse_queue(queue),
        countdown=parse_seconds(countdown, "--countdown") if countdown is not None else None,
        eta=parse_time(eta, "--eta") if eta is not None else None,
        expires=parse_expires(expires) if expires is not None else None,
        priority=priority,
    )
    send(target, task, Output(json), check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


@which_stack("broker", "backend")
def add(
    target: Target,
    x: Annotated[str, typer.Argument(help="First number.", show_default=False)],
    y: Annotated[str, typer.Argument(help="Second number.", show_default=False)],
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send tasks.add(X, Y): it sleeps 5 s, then returns X + Y.

    Integers of any size stay exact; decimals are 64-bit floats; negatives are fine (tcel add -2 3).
    The same as 'tcel call tasks.add X Y --no-check'.
    """
    from ..call import TaskCall
    from ..task_args import parse_numbers

    send(target, TaskCall("tasks.add", parse_numbers([x, y])), Output(json), wait=wait, timeout=timeout, quiet=quiet)


@which_stack("broker", "backend")
def tsum(
    target: Target,
    numbers: Annotated[list[str], typer.Argument(help="Numbers to add up, or - to read them from stdin.")],
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send tasks.tsum(NUMBERS): it returns their sum.

    'seq 1 100000 | tcel tsum -' reads whitespace-separated numbers from stdin.
    The same as "tcel call tasks.tsum '[NUMBERS]' --no-check".
    """
    from ..call import TaskCall
    from ..task_args import parse_numbers, split_words

    words = split_words(sys.stdin) if numbers == ["-"] else numbers
    task = TaskCall("tasks.tsum", [parse_numbers(words)])
    send(target, task, Output(json), wait=wait, timeout=timeout, quiet=quiet)


@which_stack("broker", "backend")
def retry(
    target: Target,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A finished task: failed, revoked or succeeded.")],
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send a finished task again, with its name, args, kwargs and queue; print the new id.

    'tcel result NEW' shows which task it retried. Exits 10 when the backend no longer knows the task.
    """
    from ..call import retry_call
    from ..result_store import ResultStore

    task = retry_call(ResultStore(target.url("backend")), task_id.strip())
    send(target, task, Output(json), check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


def send(
    target: Target, task: TaskCall, out: Output, *, check: bool = False, wait: bool, timeout: float, quiet: bool
) -> None:
    """Send one task (after checking a worker knows it, if asked); without --wait print its id, with --wait
    show its states live, then how it ended."""
    from ..call import failure, submit
    from ..publisher import new_task_id
    from ..tables import value

    where = target.endpoints(backend_required=wait)
    if check:
        from ..task_registry import check as check_registered
        from ..workers import known_workers

        warning = check_registered(where.broker_url, task.name, task.queue, lambda: known_workers(target))
        if warning:
            out.warn(warning)
    task_id = new_task_id()
    again = f" again (retry of {task.retry_of})" if task.retry_of else ""
    if not wait:
        submitted = submit(where, task, task_id)
        if submitted.warning:
            out.warn(submitted.warning)
        if out.json_mode:
            out.data({"id": task_id, "task": task.name, "state": "SENT", "queue": task.queue, "retry_of": task.retry_of})
            return
        out.line(task_id)
        if not quiet and where.backend_url is not None:
            out.info(f"sent {task.name}{again}; its result: tcel result {task_id}")
        return
    try:
        with out.status(f"{task.name} {task_id[:8]}: QUEUED") as progress:
            submitted = submit(
                where, task, task_id, wait=timeout,
                on_state=lambda state: progress(f"{task.name} {task_id[:8]}: {state}"),
            )
    except KeyboardInterrupt:
        out.info(f"stopped waiting; task {task_id} goes on: tcel result {task_id}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if submitted.warning:
        out.warn(submitted.warning)
    record = submitted.record
    if out.json_mode:
        out.data(record.as_dict())
    elif record.state == "SUCCESS":
        out.line(value(record.result))
        if not quiet:
            runtime = f" in {record.runtime:.2f}s" if record.runtime is not None else ""
            out.info(f"{record.name} {record.id}{again} succeeded{runtime}")
    elif record.traceback:
        out.info(record.traceback.rstrip())
    error = failure(record)
    if error is not None:
        raise error


def register(app: typer.Typer) -> None:
    app.command(context_settings=NUMBERS_CONTEXT)(call)
    app.command(context_settings=NUMBERS_CONTEXT)(add)
    app.command(context_settings=NUMBERS_CONTEXT)(tsum)
    app.command()(retry)
