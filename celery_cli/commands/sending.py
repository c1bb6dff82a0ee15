"""`tcel add` and `tcel tsum`: send the tutorial's tasks and, with --wait, show how they end."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ..endpoints import Target
from ..errors import ExitCode
from ..output import Output
from .options import Json, Quiet, TaskTimeout, Wait, which_stack

NUMBERS_CONTEXT = {"ignore_unknown_options": True}  # so that -3 is a number, not an option


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
    """
    from ..task_args import parse_numbers

    send(target, "tasks.add", parse_numbers([x, y]), wait, timeout, quiet, Output(json))


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
    """
    from ..task_args import parse_numbers, split_words

    words = split_words(sys.stdin) if numbers == ["-"] else numbers
    send(target, "tasks.tsum", [parse_numbers(words)], wait, timeout, quiet, Output(json))


def send(target: Target, name: str, args: list[Any], wait: bool, timeout: float, quiet: bool, out: Output) -> None:
    """Send one task; without --wait print its id, with --wait show its states live, then how it ended."""
    from ..call import failure, submit
    from ..publisher import new_task_id
    from ..tables import value

    where = target.endpoints(backend_required=wait)
    task_id = new_task_id()
    if not wait:
        submitted = submit(where, name, args, task_id)
        if submitted.warning:
            out.warn(submitted.warning)
        if out.json_mode:
            out.data({"id": task_id, "task": name, "state": "SENT"})
            return
        out.line(task_id)
        if not quiet and where.backend_url is not None:
            out.info(f"sent {name}; its result: tcel result {task_id}")
        return
    try:
        with out.status(f"{name} {task_id[:8]}: QUEUED") as progress:
            submitted = submit(
                where, name, args, task_id, wait=timeout, on_state=lambda state: progress(f"{name} {task_id[:8]}: {state}")
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
            out.info(f"{record.name} {record.id} succeeded{runtime}")
    elif record.traceback:
        out.info(record.traceback.rstrip())
    error = failure(record)
    if error is not None:
        raise error


def register(app: typer.Typer) -> None:
    app.command(context_settings=NUMBERS_CONTEXT)(add)
    app.command(context_settings=NUMBERS_CONTEXT)(tsum)
