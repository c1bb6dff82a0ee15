"""`tcel call` (any task by name), its presets `tcel add` and `tcel tsum` (the tutorial's tasks), and
`tcel retry`: send a task and, with --wait, show how it ends."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..names import QUEUE
from ..output import Output
from .completion import task_names
from .options import Json, Quiet, TaskTimeout, Wait, which_stack

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..stream_sum import Chunk
    from ..task_call import TaskCall

NUMBERS_CONTEXT = {"ignore_unknown_options": True}  # so that -3 is a number, not an option
NoCheck = Annotated[
    bool,
    typer.Option("--no-check", help="Send even if no running worker has registered the task (before workers run)."),
]


@which_stack("broker", "backend")
def call(
    target: Target,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="The task's registered name, such as tasks.add.",
            autocompletion=task_names,
            show_default=False,
        ),
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ARG]...",
            help="Positional arguments, each a JSON literal: 3, '\"text\"', '[1, 2]'; - reads one from stdin.",
            show_default=False,
        ),
    ] = None,
    kwargs: Annotated[str | None, typer.Option(metavar="JSON", help="Keyword arguments, a JSON object.")] = None,
    raw_strings: Annotated[
        bool, typer.Option("--raw-strings", help="Send an ARG that is not JSON as a string instead of refusing it.")
    ] = False,
    countdown: Annotated[str | None, typer.Option(metavar="S", help="Run no earlier than S seconds from now.")] = None,
    eta: Annotated[
        str | None,
        typer.Option(metavar="ISO-8601", help="Run no earlier than then (local time unless an offset is given)."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(metavar="S|ISO-8601", help="Drop the task unless it starts within S seconds, or by then."),
    ] = None,
    queue: Annotated[str, typer.Option("--queue", "-Q", help="The queue to send it to.")] = QUEUE,
    priority: Annotated[
        int | None, typer.Option(min=0, max=9, help="Message priority 0-9 (queues declared with x-max-priority).")
    ] = None,
    then: Annotated[
        list[str] | None,
        typer.Option(
            "--then",
            metavar="STEP",
            help="Chain a step after it, given its result: --then 'tasks.mul(4)' (repeatable; see 'tcel chain').",
        ),
    ] = None,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send any task by name, its arguments as JSON: call tasks.tsum '[1, 2]' --wait.

    Each ARG is a JSON literal (a word that is not JSON is refused, unless --raw-strings); an ARG of - is a
    JSON value read from stdin, for arguments too big for a command line. A name no running
    worker has registered is refused (exit 2) with the names they know, since Celery would drop it; --no-check
    sends it anyway.
    """
    from ..task_args import parse_expires, parse_json_args, parse_kwargs, parse_queue, parse_seconds, parse_time
    from ..task_call import TaskCall

    if not name.strip() or name.startswith("-"):
        raise UsageError(f"invalid task name {name!r}", hint="give the registered name, such as tasks.add")
    if then:
        if countdown is not None or eta is not None or expires is not None or priority is not None:
            raise UsageError("--countdown, --eta, --expires and --priority apply to one task, not to --then")
        from .workflows import chained

        chained(target, name, args or [], kwargs, raw_strings, then, queue, no_check, wait, timeout, quiet, json)
        return
    task = TaskCall(
        name,
        parse_json_args(args or [], raw_strings, sys.stdin),
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
    from ..task_args import parse_numbers
    from ..task_call import TaskCall

    task = TaskCall("tasks.add", parse_numbers([x, y]))
    send(target, task, Output(json), template=True, wait=wait, timeout=timeout, quiet=quiet)


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

    'seq 1 10000000 | tcel tsum -' reads whitespace-separated numbers from stdin as a stream: past one chunk
    (1 MiB of text) the workers sum it chunk by chunk while it is read (tasks.tsum_chunk, 8 at most in flight),
    then one tsum over their sums, whose id is printed; --timeout also bounds each wait for a chunk. A smaller
    input is one task, the same as "tcel call tasks.tsum '[NUMBERS]' --no-check".
    """
    from ..task_args import parse_numbers
    from ..task_call import TaskCall

    out = Output(json)
    if numbers != ["-"]:
        task = TaskCall("tasks.tsum", [parse_numbers(numbers)])
    else:
        from itertools import chain, islice

        from ..stream_sum import numbers_of, read_chunks

        chunks = read_chunks(sys.stdin.buffer)
        head = list(islice(chunks, 2))  # both checked before anything is sent
        if len(head) < 2:
            task = TaskCall("tasks.tsum", [numbers_of(head[0]) if head else []])
        else:
            task = streamed(target, chain(head, chunks), out, timeout, quiet)
    send(target, task, out, template=task.name == "tasks.tsum", wait=wait, timeout=timeout, quiet=quiet)


def streamed(target: Target, chunks: Iterator[Chunk], out: Output, timeout: float, quiet: bool) -> TaskCall:
    """Sum a stream chunk by chunk on the workers, with a progress line; return the final tsum's call."""
    from ..stream_sum import CHUNK_TASK, sum_stream
    from ..task_registry import check as check_registered
    from ..workers import known_workers

    where = target.endpoints(backend_required=True)  # the chunks' sums come back through the backend
    try:
        warning = check_registered(where.broker_url, CHUNK_TASK, QUEUE, lambda: known_workers(target))
    except UsageError as error:
        raise UsageError(
            f"{error.message}: a streamed input of more than one chunk (1 MiB) is summed by {CHUNK_TASK} on the "
            "workers, and nothing was sent",
            hint="start workers of tcel's template, which has it ('tcel init' writes one), or give a smaller input",
        ) from None
    if warning:
        out.warn(warning)
    with out.status("tsum -: reading") as progress:
        task = sum_stream(
            where,
            chunks,
            timeout,
            lambda tally: progress(
                f"tsum -: {tally.numbers_read:,} numbers read, "
                f"{tally.chunks_done:,}/{tally.chunks_sent:,} chunks summed, "
                f"{tally.rate:,.0f} numbers/s"
            ),
        )
    if not quiet and not out.json_mode:
        job = task.job or {}
        out.info(
            f"{job.get('numbers', 0):,} numbers read in {job.get('read_seconds', 0):.1f}s and summed by "
            f"{job.get('chunks', 0):,} chunk tasks; sending the sum of their sums"
        )
    return task


def send(
    target: Target,
    task: TaskCall,
    out: Output,
    *,
    check: bool = False,
    template: bool = False,
    wait: bool,
    timeout: float,
    quiet: bool,
) -> None:
    """Send one task (after checking a worker knows it, if asked; for `template`, one of tcel's template's tasks,
    refused when the workers answer and run an app without it); without --wait print its id, with --wait show
    its states live, then how it ended."""
    from ..broker_kind import eta_warning
    from ..call import failure, submit
    from ..tables import value
    from ..task_message import new_task_id

    where = target.endpoints(backend_required=wait)
    if template and not check:
        from ..task_registry import refuse_unknown_template_task
        from ..workers import known_workers

        refuse_unknown_template_task(where.broker_url, task.name, lambda: known_workers(target))
    if check:
        from ..task_registry import check as check_registered
        from ..workers import known_workers

        warning = check_registered(where.broker_url, task.name, task.queue, lambda: known_workers(target))
        if warning:
            out.warn(warning)
    late = eta_warning(where.broker_url, task.countdown, task.eta)
    if late:
        out.warn(late)
    task_id = new_task_id()
    again = f" again (retry of {task.retry_of})" if task.retry_of else ""
    if not wait:
        submitted = submit(where, task, task_id)
        if submitted.warning:
            out.warn(submitted.warning)
        if out.json_mode:
            sent = {"id": task_id, "task": task.name, "state": "SENT", "queue": task.queue, "retry_of": task.retry_of}
            out.data({**sent, "job": task.job} if task.job else sent)
            return
        out.line(task_id)
        if not quiet and where.backend_url is not None:
            out.info(f"sent {task.name}{again}; its result: tcel result {task_id}")
        return
    try:
        with out.status(f"{task.name} {task_id[:8]}: QUEUED") as progress:
            states = StatesSeen(out, task_id, lambda text: progress(f"{task.name} {task_id[:8]}: {text}"))
            submitted = submit(where, task, task_id, wait=timeout, on_state=states.seen)
    except KeyboardInterrupt:
        out.info(f"stopped waiting; task {task_id} goes on: tcel result {task_id}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if submitted.warning:
        out.warn(submitted.warning)
    record = submitted.record
    assert record is not None, "a task waited for comes back finished or as an error"
    if out.json_mode:
        (out.json_line if states.lines else out.data)(record.as_dict())
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


class StatesSeen:
    """What `--wait` shows of a task's states: the state in the spinner, a custom state's progress as a bar
    (current/total) or its meta, a retry's reason ("Retry in 60s"); with --json, one JSON line per change of a
    custom state or its meta."""

    def __init__(self, out: Output, task_id: str, show: Callable[[str], None]) -> None:
        self.out, self.task_id, self.show = out, task_id, show
        self.lines = 0
        self.last: tuple[str, str] | None = None

    def seen(self, meta: dict[str, Any]) -> None:
        from json import dumps

        from ..task_record import BUILTIN_STATES, exc_message, state_text

        state, result = meta.get("status", "PENDING"), meta.get("result")
        custom = result if state not in BUILTIN_STATES else None
        reason = result.get("exc_message") if state == "RETRY" and isinstance(result, dict) else None
        self.show(f"RETRY: {exc_message(reason)}" if reason else state_text(state, custom))
        if not self.out.json_mode or state in BUILTIN_STATES:
            # a built-in state between two custom ones changes no line: the follower can read a late STARTED
            # (from pub/sub) after the first PROGRESS it read with GET, and then that PROGRESS again
            return
        change = (state, dumps(custom, sort_keys=True, default=str))
        if change != self.last:
            self.out.json_line({"id": self.task_id, "state": state, "meta": custom})
            self.lines += 1
            self.last = change


def register(app: typer.Typer) -> None:
    app.command(context_settings=NUMBERS_CONTEXT)(call)
    app.command(context_settings=NUMBERS_CONTEXT)(add)
    app.command(context_settings=NUMBERS_CONTEXT)(tsum)
