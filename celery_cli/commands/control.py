"""`tcel revoke` and `tcel purge` (tasks that are queued or running), and `tcel control ...` (changing
running workers: limits, pool size, queues consumed, shutdown), each saying which workers acknowledged."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..output import Output
from .completion import task_names, workers
from .inspect import AnswerTimeout, Worker
from .options import Json, which_stack

if TYPE_CHECKING:
    from ..remote_control import Answers


@which_stack("broker", "backend")
def revoke(
    target: Target,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task to revoke, or a unique start of its id.")],
    terminate: Annotated[bool, typer.Option("--terminate", help="Also kill it if it is running now.")] = False,
    tree: Annotated[
        bool, typer.Option("--tree", help="Revoke every task of its workflow that has not finished.")
    ] = False,
    json: Json = False,
) -> None:
    """Revoke a task: a queued one will never run; with --terminate a running one is killed.

    With --tree, every unfinished task of the workflow it belongs to (chain steps not sent yet, group members,
    a chord's body), in one message: tcel revoke ID --tree.
    """
    from ..remote_control import Control
    from ..task_ids import resolve_at

    out = Output(json)
    backend = target.endpoints(backend_required=tree).backend_url
    task_id = resolve_at(backend, task_id)
    ids = [task_id]
    if tree:
        from ..result_store import ResultStore
        from ..workflow_tree import read

        found = read(ResultStore(str(backend)), task_id)
        # a task no worker has received yet (queued behind others) is known to no record: revoke it anyway
        ids = found.unfinished() if task_id in found.members else [task_id]
        if not ids:
            out.success(f"nothing to revoke: every task of the workflow of {task_id} has finished")
            if json:
                out.data({"id": task_id, "revoked": False, "ids": [], "workers": [], "terminate": terminate})
            return
    with Control(target.url("broker")) as control:
        workers = control.revoke(ids if tree else task_id, terminate=terminate)
    if json:
        out.data({"id": task_id, "revoked": bool(workers), "ids": ids, "workers": workers, "terminate": terminate})
    elif workers:
        what = f"{len(ids)} unfinished tasks of the workflow of {task_id}" if tree else task_id
        out.success(f"revoked {what} on {', '.join(sorted(workers))}")
    else:
        out.warn(f"no worker answered: workers keep revocations in memory, so one started later may run {task_id}")
    if not workers:
        raise typer.Exit(int(ExitCode.NOT_RUNNING))


@which_stack("broker")
def purge(
    target: Target,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Json = False,
) -> None:
    """Delete every task waiting in the queue (asks first; --yes skips the question)."""
    from ..remote_control import Control

    out = Output(json)
    purged = 0
    if yes or _asked_to_purge(out, target):
        with Control(target.url("broker")) as control:
            purged = control.purge()
    if json:
        out.data({"purged": purged})
    else:
        out.success(f"purged {purged} queued task(s)")


def _asked_to_purge(out: Output, target: Target) -> bool:
    """Count what waits and ask; the question is asked with no broker connection held open."""
    from ..remote_control import Control

    with Control(target.url("broker")) as control:
        waiting = control.queued()
    if not waiting:
        return False
    if not out.confirm(
        f"Delete {waiting} queued task(s)?",
        "purge deletes queued tasks",
        hint="pass --yes to confirm when not at a terminal",
    ):
        out.info("nothing purged")
        raise typer.Exit(int(ExitCode.FAILURE))
    return True


control_app = typer.Typer(
    name="control",
    help="Change running workers: rate and time limits, pool size, queues consumed, shutdown. Each command says "
    "which workers acknowledged it, refused it or did not answer (exit 1 unless all acknowledged).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
TaskName = Annotated[str, typer.Argument(metavar="TASK", help="A registered task name.", autocompletion=task_names)]
QueueName = Annotated[str, typer.Argument(metavar="QUEUE", help="A queue name.")]
_RATE = re.compile(r"\d+(\.\d+)?(/[smh])?")


class PoolChange(StrEnum):
    grow = "grow"
    shrink = "shrink"


@control_app.command("rate-limit")
@which_stack("broker")
def rate_limit(
    target: Target,
    task: TaskName,
    rate: Annotated[str, typer.Argument(help="Tasks per second, minute or hour: 10/s, 100/m, 5/h; 0 for no limit.")],
    worker: Worker = None,
    timeout: AnswerTimeout = 1.0,
    json: Json = False,
) -> None:
    """Limit how often the workers start TASK."""
    if not _RATE.fullmatch(rate.strip()):
        raise UsageError(f"invalid rate {rate!r}", hint="such as 10/s, 100/m, 5/h, or 0 for no limit")
    command(target, "rate_limit", worker, timeout, json, task_name=task, rate_limit=rate.strip())


@control_app.command("time-limit")
@which_stack("broker")
def time_limit(
    target: Target,
    task: TaskName,
    soft: Annotated[str, typer.Argument(help="Seconds after which the task gets SoftTimeLimitExceeded.")],
    hard: Annotated[str | None, typer.Argument(help="Seconds after which its process is killed.")] = None,
    worker: Worker = None,
    timeout: AnswerTimeout = 1.0,
    json: Json = False,
) -> None:
    """Set TASK's soft (and hard) time limit on the workers."""
    from ..task_args import parse_seconds

    soft_seconds = parse_seconds(soft, "SOFT")
    hard_seconds = parse_seconds(hard, "HARD") if hard is not None else None
    if hard_seconds is not None and hard_seconds < soft_seconds:
        raise UsageError(f"the hard limit {hard} is below the soft limit {soft}", hint="give HARD >= SOFT")
    command(target, "time_limit", worker, timeout, json, task_name=task, soft=soft_seconds, hard=hard_seconds)


@control_app.command("pool")
@which_stack("broker")
def pool(
    target: Target,
    change: Annotated[PoolChange, typer.Argument(metavar="grow|shrink", help="Add processes, or stop some.")],
    n: Annotated[int, typer.Argument(metavar="N", min=1, max=1000, help="By how many processes.")] = 1,
    worker: Worker = None,
    timeout: AnswerTimeout = 1.0,
    json: Json = False,
) -> None:
    """Grow or shrink the workers' pools by N processes ('tcel status' shows the size now)."""
    command(target, f"pool_{change.value}", worker, timeout, json, n=n)


@control_app.command("autoscale")
@which_stack("broker")
def autoscale(
    target: Target,
    maximum: Annotated[int, typer.Argument(metavar="MAX", min=1, max=1000, help="Most processes.")],
    minimum: Annotated[int, typer.Argument(metavar="MIN", min=0, max=1000, help="Fewest processes.")],
    worker: Worker = None,
    timeout: AnswerTimeout = 1.0,
    json: Json = False,
) -> None:
    """Set the autoscaler's bounds (only workers started with --autoscale have one; others refuse)."""
    if minimum > maximum:
        raise UsageError(f"MIN {minimum} is above MAX {maximum}", hint="give MAX first, then MIN")
    command(target, "autoscale", worker, timeout, json, max=maximum, min=minimum)


@control_app.command("add-consumer")
@which_stack("broker")
def add_consumer(
    target: Target, queue: QueueName, worker: Worker = None, timeout: AnswerTimeout = 1.0, json: Json = False
) -> None:
    """Make the workers consume QUEUE too (declared durable, as Celery does), until they restart."""
    from ..task_args import parse_queue

    command(target, "add_consumer", worker, timeout, json, queue=parse_queue(queue))


@control_app.command("cancel-consumer")
@which_stack("broker")
def cancel_consumer(
    target: Target, queue: QueueName, worker: Worker = None, timeout: AnswerTimeout = 1.0, json: Json = False
) -> None:
    """Make the workers stop consuming QUEUE; its tasks wait there."""
    from ..task_args import parse_queue

    command(target, "cancel_consumer", worker, timeout, json, queue=parse_queue(queue))


@control_app.command("shutdown")
@which_stack("broker")
def shutdown(
    target: Target,
    worker: Annotated[
        str,
        typer.Argument(
            metavar="WORKER", help="The worker to stop (worker-2 or celery@worker-2).", autocompletion=workers
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Json = False,
) -> None:
    """Shut a worker down (asks first; --yes skips the question); 'tcel up' starts it again. On Swarm its
    service starts a new one at once: 'tcel scale' runs fewer."""
    from .. import workers as stack_workers

    out = Output(json)
    if not yes and not out.confirm(
        f"Shut down {worker}?", "shutdown stops a worker", hint="pass --yes to confirm when not at a terminal"
    ):
        raise typer.Exit(int(ExitCode.FAILURE))
    _report(out, "shutdown", stack_workers.shutdown(target, worker))


def command(target: Target, name: str, worker: str | None, timeout: float, json: bool, **arguments: Any) -> None:
    """Send one control command to the addressed workers and report who acknowledged it."""
    from .. import workers as stack_workers

    _report(Output(json), name.replace("_", "-"), stack_workers.control(target, name, worker, timeout, **arguments))


def _report(out: Output, title: str, found: Answers) -> None:
    """Who acknowledged, who refused and who did not answer; exit 1 unless every worker acknowledged."""
    from .. import tables

    if out.json_mode:
        out.data(
            {"command": title, "acknowledged": found.acknowledged, "refused": found.refused, "no_answer": found.silent}
        )
    else:
        out.render(tables.control_report(title, found.acknowledged, found.refused, found.silent))
    if found.refused or found.silent or not found.replies:
        raise typer.Exit(int(ExitCode.FAILURE))


def register(app: typer.Typer) -> None:
    app.command()(revoke)
    app.command()(purge)
    app.add_typer(control_app)
