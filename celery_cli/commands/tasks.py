"""`tcel add`, `tcel tsum`, `tcel result`, `tcel results`: sending tasks and reading their results."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Any, Optional

import typer

from ..connection import Endpoints, endpoints, resolve_url
from ..control import Control
from ..errors import ExitCode, TaskFailed, UsageError
from ..numbers import parse_numbers, split_words
from .. import render
from ..output import Output
from ..results import ResultStore, TaskRecord
from ..send import new_task_id
from ..submit import submit
from ..settings import resolve_project
from .options import BackendUrl, BrokerUrl, Json, ProjectDir, ProjectName

NUMBERS_CONTEXT = {"ignore_unknown_options": True}  # so that -3 is a number, not an option

Wait = Annotated[bool, typer.Option("--wait", "-w", help="Wait for the result and show it.")]
Timeout = Annotated[float, typer.Option(min=0.1, help="With --wait: give up after this many seconds (exit 6).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the task id.")]


def add(
    x: Annotated[str, typer.Argument(help="First number.", show_default=False)],
    y: Annotated[str, typer.Argument(help="Second number.", show_default=False)],
    wait: Wait = False,
    timeout: Timeout = 60,
    quiet: Quiet = False,
    json: Json = False,
    broker_url: BrokerUrl = None,
    backend_url: BackendUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """Send tasks.add(X, Y): it sleeps 5 s, then returns X + Y.

    Integers of any size stay exact; decimals are 64-bit floats; negatives are fine (tcel add -2 3).
    """
    numbers = parse_numbers([x, y])
    run_task("tasks.add", numbers, wait, timeout, quiet, Output(json), _endpoints(project_dir, project_name,
                                                                                broker_url, backend_url))


def tsum(
    numbers: Annotated[list[str], typer.Argument(help="Numbers to add up, or - to read them from stdin.")],
    wait: Wait = False,
    timeout: Timeout = 60,
    quiet: Quiet = False,
    json: Json = False,
    broker_url: BrokerUrl = None,
    backend_url: BackendUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """Send tasks.tsum(NUMBERS): it returns their sum.

    'seq 1 100000 | tcel tsum -' reads whitespace-separated numbers from stdin.
    """
    words = split_words(sys.stdin) if numbers == ["-"] else numbers
    run_task("tasks.tsum", [parse_numbers(words)], wait, timeout, quiet, Output(json),
             _endpoints(project_dir, project_name, broker_url, backend_url))


def _endpoints(project_dir, project_name, broker_url, backend_url) -> Endpoints:
    return endpoints(resolve_project(project_dir, project_name), broker_url, backend_url)


def _store(project_dir, project_name, backend_url) -> ResultStore:
    return ResultStore(resolve_url(resolve_project(project_dir, project_name), "backend", backend_url))


def run_task(
    name: str, args: list[Any], wait: bool, timeout: float, quiet: bool, out: Output, where: Endpoints
) -> None:
    """Send one task; without --wait print its id, with --wait show its states live, then its result."""
    task_id = new_task_id()
    if not wait:
        submitted = submit(where, name, args, task_id)
        if submitted.warning:
            out.warn(submitted.warning)
        if out.json_mode:
            out.data({"id": task_id, "task": name, "state": "SENT"})
            return
        out.line(task_id)
        if not quiet:
            out.info(f"sent {name}; its result: tcel result {task_id}")
        return
    try:
        with out.status(f"{name} {task_id[:8]}: PENDING") as progress:
            submitted = submit(
                where, name, args, task_id, wait=timeout, on_state=lambda state: progress(f"{name} {task_id[:8]}: {state}")
            )
    except KeyboardInterrupt:
        out.info(f"stopped waiting; task {task_id} goes on: tcel result {task_id}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if submitted.warning:
        out.warn(submitted.warning)
    show_outcome(submitted.record, out, quiet)


def show_outcome(record: TaskRecord, out: Output, quiet: bool) -> None:
    """The result on stdout (alone, for scripts); a failure's traceback on stderr and a non-zero exit."""
    if out.json_mode:
        out.data(record.as_dict())
    elif record.state == "SUCCESS":
        out.line(render.value(record.result))
        if not quiet:
            runtime = f" in {record.runtime:.2f}s" if record.runtime is not None else ""
            out.info(f"{record.name} {record.id} succeeded{runtime}")
    elif record.traceback:
        out.info(record.traceback.rstrip())
    if record.state == "FAILURE":
        raise TaskFailed(f"task {record.id} ({record.name}) failed: {record.error}")
    if record.state != "SUCCESS":
        raise TaskFailed(f"task {record.id} ({record.name}) ended {record.state}")


def result(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task id that add or tsum printed.")],
    json: Json = False,
    backend_url: BackendUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """Show one task: state, result or error, args, worker, times.

    Exits 10 for an id the backend does not know, 9 for a failed task.
    """
    out = Output(json)
    record = _store(project_dir, project_name, backend_url).lookup(task_id.strip())
    if json:
        out.data(record.as_dict())
    else:
        state = record.state + (" (queued, not started)" if record.queued else "")
        rows = [
            ("state", state),
            ("result", render.value(record.result) if record.state == "SUCCESS" else None),
            ("error", record.error),
            ("task", record.name),
            ("args", record.args),
            ("worker", record.worker),
            ("sent", render.when(record.sent)),
            ("received", render.when(record.received)),
            ("started", render.when(record.started)),
            ("finished", render.when(record.finished)),
            ("runtime", render.seconds(record.runtime)),
        ]
        out.render(render.table(f"task {record.id}", ["field", "value"], [r for r in rows if r[1] is not None]))
        if record.traceback:
            out.info(record.traceback.rstrip())
    if record.state in ("FAILURE", "REVOKED"):
        raise typer.Exit(int(ExitCode.TASK_FAILED))


def results(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many tasks to show.")] = 20,
    state: Annotated[
        Optional[str], typer.Option(help="Only tasks in this state: PENDING, STARTED, SUCCESS, FAILURE, ...")
    ] = None,
    json: Json = False,
    backend_url: BackendUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """List recent tasks, newest first, whoever sent them."""
    out = Output(json)
    records = _store(project_dir, project_name, backend_url).recent(limit, state)
    if json:
        out.data({"tasks": [r.as_dict() for r in records]})
        return
    if not records:
        out.info("no tasks yet" + (f" in state {state.upper()}" if state else ""))
        return
    out.render(render.tasks_table("recent tasks", records))


def revoke(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task to revoke.")],
    terminate: Annotated[bool, typer.Option("--terminate", help="Also kill it if it is running now.")] = False,
    json: Json = False,
    broker_url: BrokerUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """Revoke a task: a queued one will never run; with --terminate a running one is killed."""
    out = Output(json)
    project = resolve_project(project_dir, project_name)
    with Control(resolve_url(project, "broker", broker_url)) as control:
        workers = control.revoke(task_id.strip(), terminate=terminate)
    if json:
        out.data({"id": task_id, "revoked": bool(workers), "workers": workers, "terminate": terminate})
    elif workers:
        out.success(f"revoked {task_id} on {', '.join(sorted(workers))}")
    else:
        out.warn(f"no worker answered: workers keep revocations in memory, so one started later may run {task_id}")


def purge(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Json = False,
    broker_url: BrokerUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """Delete every task waiting in the queue (asks first; --yes skips the question)."""
    out = Output(json)
    project = resolve_project(project_dir, project_name)
    with Control(resolve_url(project, "broker", broker_url)) as control:
        waiting = control.queued()
        if waiting and not yes:
            if not sys.stdin.isatty():
                raise UsageError("purge deletes queued tasks", hint="pass --yes to confirm when not at a terminal")
            if not typer.confirm(f"Delete {waiting} queued task(s)?", err=True):
                raise typer.Exit(int(ExitCode.FAILURE))
        purged = control.purge() if waiting else 0
    if json:
        out.data({"purged": purged})
    else:
        out.success(f"purged {purged} queued task(s)")


class BenchTask(str, Enum):
    tsum = "tsum"
    add = "add"


def bench(
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=1_000_000, help="How many tasks to send.")] = 1000,
    task: Annotated[BenchTask, typer.Option(help="Which task to send.")] = BenchTask.tsum,
    size: Annotated[int, typer.Option(min=1, max=100_000, help="Numbers per tsum task.")] = 10,
    timeout: Annotated[float, typer.Option(min=1, help="Give up on results after this many seconds.")] = 600,
    json: Json = False,
    broker_url: BrokerUrl = None,
    backend_url: BackendUrl = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
) -> None:
    """Send N tasks, collect every result, and report sent/s, completed/s and latency percentiles."""
    from ..bench import run

    out = Output(json)
    where = _endpoints(project_dir, project_name, broker_url, backend_url)
    with out.progress(f"{count} x tasks.{task.value}") as progress:
        result = run(where, count, task.value, size, timeout, progress)
    if json:
        out.data(result.as_dict())
        return
    out.render(
        render.table(
            f"bench: {count} x {result.task}",
            ["sent/s", "completed/s", "p50", "p95", "p99", "failed", "total"],
            [[f"{result.sent_per_second:.0f}", f"{result.completed_per_second:.0f}",
              *(f"{value * 1000:.1f} ms" for value in (result.latency_p50, result.latency_p95, result.latency_p99)),
              result.failed, f"{result.total_seconds:.2f}s"]],
        )
    )
    if result.failed:
        raise typer.Exit(int(ExitCode.TASK_FAILED))


def register(app: typer.Typer) -> None:
    app.command(context_settings=NUMBERS_CONTEXT)(add)
    app.command(context_settings=NUMBERS_CONTEXT)(tsum)
    app.command()(result)
    app.command()(results)
    app.command()(revoke)
    app.command()(purge)
    app.command()(bench)
