"""`tcel chain`, `tcel group`, `tcel chord` and `tcel workflow`: several tasks sent as one Celery workflow, typed
as steps (`tasks.add(2, 3)`) or read from a JSON document; checked whole before anything is sent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..names import QUEUE
from ..output import Output
from .options import Json, Quiet, TaskTimeout, Wait, which_stack

if TYPE_CHECKING:
    from ..workflow import Node

Steps = Annotated[
    list[str],
    typer.Argument(
        metavar="STEP...", help="Each a task and its JSON arguments in one word: 'tasks.add(2, 3)', tasks.ping."
    ),
]
Queue = Annotated[str, typer.Option("--queue", "-Q", help="The queue every task is sent to.")]
NoCheck = Annotated[
    bool, typer.Option("--no-check", help="Send even if no running worker has registered a task of the workflow.")
]


@which_stack("broker", "backend")
def chain(
    target: Target,
    steps: Steps,
    queue: Queue = QUEUE,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send tasks one after the other, each given the result of the one before: chain 'tasks.add(2, 3)' 'tasks.mul(4)'.

    Prints the workflow's id (its first task's); 'tcel result ID --tree' shows every step. The same as
    'tcel call tasks.add 2 3 --then "tasks.mul(4)"'.
    """
    from ..workflow import Chain, parse_step

    node = Chain([parse_step(step, f"step {index + 1}") for index, step in enumerate(steps)])
    run(target, node, Output(json), queue=queue, check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


@which_stack("broker", "backend")
def group(
    target: Target,
    steps: Steps,
    queue: Queue = QUEUE,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send tasks to run in parallel: group 'tasks.add(1, 1)' 'tasks.add(2, 2)' --wait prints [2, 4].

    Prints the group's id; --wait shows members done / total, then the list of their results.
    """
    from ..workflow import Group, parse_step

    node = Group([parse_step(step, f"member {index + 1}") for index, step in enumerate(steps)])
    run(target, node, Output(json), queue=queue, check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


@which_stack("broker", "backend")
def chord(
    target: Target,
    steps: Steps,
    then: Annotated[
        str, typer.Option("--then", metavar="STEP", help="The step run once on the list of the members' results.")
    ],
    queue: Queue = QUEUE,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send tasks in parallel, then one on their results: chord 'tasks.add(1, 1)' 'tasks.add(2, 2)' --then tasks.tsum.

    Uses the Redis backend's native chord support (no polling task). If a member fails, the body does not run
    and is marked failed. For many members, write a workflow document: tcel workflow --help.
    """
    from ..workflow import Group, parse_step

    members: list[Node] = [parse_step(step, f"member {index + 1}") for index, step in enumerate(steps)]
    node = Group(members, then=parse_step(then, "--then"))
    run(target, node, Output(json), queue=queue, check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


@which_stack("broker", "backend")
def workflow(
    target: Target,
    path: Annotated[str, typer.Argument(metavar="FILE", help="A JSON workflow document, or - to read it from stdin.")],
    queue: Queue = QUEUE,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send a workflow written as JSON: chains, groups and chords of tasks, nested as Celery nests them.

    A step is "tasks.add(2, 3)" or {"task": "tasks.add", "args": [2, 3], "kwargs": {}}; a workflow is
    {"chain": [STEP, ...]}, {"group": [STEP, ...]} or {"chord": [STEP, ...], "then": STEP}, and any of them
    can be a step. Example: echo '{"chord": ["tasks.add(1, 1)", "tasks.add(2, 2)"], "then": "tasks.tsum"}' |
    tcel workflow - --wait prints 6. Every step is checked before anything is sent.
    """
    from ..task_args import read_bounded
    from ..workflow import read_document

    if path == "-":
        text, source = read_bounded(sys.stdin), "on stdin"
    else:
        try:
            text, source = Path(path).read_text(), path
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read workflow {path}: {exc}", hint="give a JSON file, or - for stdin") from None
    node = read_document(text, source)
    run(target, node, Output(json), queue=queue, check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


def chained(
    target: Target,
    name: str,
    args: list[str],
    kwargs: str | None,
    raw_strings: bool,
    then: list[str],
    queue: str,
    no_check: bool,
    wait: bool,
    timeout: float,
    quiet: bool,
    json: bool,
) -> None:
    """`call ... --then STEP`: the task and the steps after it, sent as a chain."""
    from ..task_args import parse_json_args, parse_kwargs
    from ..workflow import Chain, Step, parse_step

    first = Step(name, parse_json_args(args, raw_strings, sys.stdin), parse_kwargs(kwargs), name)
    node = Chain([first, *(parse_step(step, f"--then {index + 1}") for index, step in enumerate(then))])
    run(target, node, Output(json), queue=queue, check=not no_check, wait=wait, timeout=timeout, quiet=quiet)


def run(
    target: Target, node: Node, out: Output, *, queue: str, check: bool, wait: bool, timeout: float, quiet: bool
) -> None:
    """Check every task name (unless told not to), send the workflow; print its id, or with --wait members done /
    total, then how it ended."""
    from ..task_args import parse_queue
    from ..workflow import kind
    from ..workflow import steps as all_steps
    from ..workflow_send import send

    queue = parse_queue(queue)
    where = target.endpoints()  # a chord needs the backend, and a workflow is filed there
    if check:
        from ..task_registry import check as check_registered
        from ..workers import known_workers

        for name in sorted({step.name for step in all_steps(node)}):
            warning = check_registered(where.broker_url, name, queue, lambda: known_workers(target))
            if warning:
                out.warn(warning)
    total = len(all_steps(node))
    root = send(where, node, queue)
    if not wait:
        if out.json_mode:
            out.data({"id": root, "kind": kind(node), "tasks": total, "state": "SENT", "queue": queue})
            return
        out.line(root)
        if not quiet:
            out.info(f"sent a {kind(node)} of {total} tasks; see it: tcel result {root} --tree")
        return
    _wait(where.backend_url, node, root, out, timeout, quiet)


def _wait(backend_url: str | None, node: Node, root: str, out: Output, timeout: float, quiet: bool) -> None:
    from ..errors import TaskFailed
    from ..result_store import ResultStore
    from ..tables import value
    from ..workflow_wait import wait

    assert backend_url is not None, "waiting needs the backend (endpoints were asked with backend_required)"
    try:
        with out.progress(f"{root[:8]} tasks done") as progress:
            ended = wait(ResultStore(backend_url), node, root, timeout, progress)
    except KeyboardInterrupt:
        out.info(f"stopped waiting; workflow {root} goes on: tcel result {root} --tree")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if out.json_mode:
        out.data(ended.as_dict())
    elif not ended.failed:
        out.line(value(ended.result))
        if not quiet:
            out.info(f"{ended.kind} {root}: {ended.done}/{ended.total} tasks done")
    if ended.failed:
        first = ended.failed[0]
        raise TaskFailed(
            f"workflow {root}: task {first.id} ({first.name}) "
            + (f"failed: {first.error}" if first.state == "FAILURE" else f"ended {first.state}"),
            hint=f"see 'tcel result {root} --tree'",
        )


def register(app: typer.Typer) -> None:
    app.command()(chain)
    app.command()(group)
    app.command()(chord)
    app.command()(workflow)
