"""`tcel result` and `tcel results`: reading what tasks did, from the result backend."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..failures import Filters
from ..output import Output
from .options import Json, which_stack

if TYPE_CHECKING:
    from ..result_store import ResultStore


class GroupBy(StrEnum):
    exception = "exception"


@which_stack("backend")
def result(
    target: Target,
    task_id: Annotated[
        str, typer.Argument(metavar="ID", help="The task id that add or tsum printed, or a unique start of it.")
    ],
    tree: Annotated[
        bool,
        typer.Option(
            "--tree", help="Show the whole workflow (chain, group, chord) the task belongs to, whoever sent it."
        ),
    ] = False,
    json: Json = False,
) -> None:
    """Show one task: state, result or error, args, worker, times.

    ID may be a unique start of an id (tcel result 2bd3ec02). With --tree: the workflow's root, each step,
    group members and a chord's body, each with its state and runtime; a big group as counts (12/1000 done)
    with its failures listed. Exits 10 for an id the backend does not know, 9 for a failed task (with --tree:
    any failed task of the workflow).
    """
    from .. import tables
    from ..result_store import ResultStore
    from ..task_ids import resolve

    out = Output(json)
    store = ResultStore(target.url("backend"))
    if tree:
        _tree(store, resolve(store, task_id), out)
        return
    record = store.lookup(resolve(store, task_id))
    if json:
        out.data(record.as_dict())
    else:
        out.render(tables.task_detail(record))
        if record.traceback:
            out.info(record.traceback.rstrip())
    if record.failed:
        raise typer.Exit(int(ExitCode.TASK_FAILED))


def _tree(store: ResultStore, task_id: str, out: Output) -> None:
    from ..tree_view import draw
    from ..workflow_tree import read

    workflow = read(store, task_id)
    if not workflow.members:
        store.lookup(task_id)  # exit 10, as without --tree
    if out.json_mode:
        out.data(workflow.as_dict())
    else:
        out.render(draw(workflow))
    if any(member.record.failed for member in workflow.members.values()):
        raise typer.Exit(int(ExitCode.TASK_FAILED))


Name = Annotated[str | None, typer.Option("--name", metavar="TASK", help="Only tasks of this name: tasks.add.")]
Since = Annotated[
    str | None, typer.Option("--since", metavar="AGE", help="Only tasks seen in the last AGE: 30s, 15m, 1h, 2d.")
]


@which_stack("backend")
def results(
    target: Target,
    count: Annotated[
        int, typer.Option("--count", "-n", "--limit", min=1, max=100_000, help="How many tasks (or groups) to show.")
    ] = 20,
    state: Annotated[
        str | None, typer.Option(help="Only tasks in this state: PENDING, STARTED, SUCCESS, FAILURE, PROGRESS, ...")
    ] = None,
    name: Name = None,
    since: Since = None,
    worker: Annotated[
        str | None,
        typer.Option("--worker", metavar="NAME", help="Only tasks run by this worker (or part of its name)."),
    ] = None,
    group_by: Annotated[
        GroupBy | None,
        typer.Option(
            "--group-by", help="With --state FAILURE: one row per exception and message, most frequent first."
        ),
    ] = None,
    json: Json = False,
) -> None:
    """List recent tasks, newest first, whoever sent them.

    Filters combine: tcel results --state FAILURE --name tasks.fetch --since 1h --worker worker-2. With
    --group-by exception, failures are counted by exception and message, with first and last seen and example
    ids (from the failure index the workers keep: up to 100,000 failures, for a day).
    """
    from .. import tables
    from ..failures import since as age
    from ..result_store import ResultStore

    out = Output(json)
    store = ResultStore(target.url("backend"))
    filters = Filters(name=name, worker=worker, since=age(since))
    if group_by is not None:
        _grouped(store, state, filters, count, out)
        return
    listing = Filters(name=name, worker=worker)
    admits = None if listing == Filters() else lambda r: listing.admits(r.name, r.worker, None)
    records = store.recent(count, state, admits, filters.since)
    if json:
        out.data({"tasks": [r.as_dict() for r in records]})
    elif not records:
        filtered = " that pass the filters" if admits or since else ""
        out.info("no tasks yet" + (f" in state {state.upper()}" if state else "") + filtered)
    else:
        out.render(tables.tasks_table("recent tasks", records))


def _grouped(store: ResultStore, state: str | None, filters: Filters, count: int, out: Output) -> None:
    from ..failures import by_exception, failures
    from ..tree_view import failure_groups

    if state is None or state.upper() != "FAILURE":
        raise UsageError("--group-by exception groups failures", hint="add --state FAILURE")
    rows = by_exception(failures(store, filters))[:count]
    if out.json_mode:
        out.data({"groups": rows})
    elif not rows:
        out.info("no failures" + (" that pass the filters" if filters != Filters() else ""))
    else:
        out.render(failure_groups(rows))


def register(app: typer.Typer) -> None:
    app.command()(result)
    app.command()(results)
