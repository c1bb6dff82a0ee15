"""`tcel retry`: send a finished task again by its id, or every failure that passes filters, in bulk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..output import Output
from .options import Json, Quiet, TaskTimeout, Wait, which_stack
from .sending import NoCheck, send

if TYPE_CHECKING:
    from ..failures import Failure, Filters
    from ..result_store import ResultStore
    from ..task_call import TaskCall


@which_stack("broker", "backend")
def retry(
    target: Target,
    task_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[ID]",
            help="A finished task (failed, revoked or succeeded), or a unique start of its id; none with --state.",
            show_default=False,
        ),
    ] = None,
    state: Annotated[
        str | None, typer.Option(metavar="FAILURE", help="Retry every failure (that passes the filters) in bulk.")
    ] = None,
    name: Annotated[str | None, typer.Option(metavar="TASK", help="With --state: only tasks of this name.")] = None,
    exception: Annotated[
        str | None, typer.Option(metavar="TYPE", help="With --state: only failures that raised this: ValueError.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="AGE", help="With --state: only failures of the last AGE: 15m, 1h, 2d.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --state: do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --state: list what would be retried, send nothing.")
    ] = False,
    no_check: NoCheck = False,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send a finished task again, with its name, args, kwargs and queue; print the new id.

    'tcel result NEW' shows which task it retried. Exits 10 when the backend no longer knows the task.
    In bulk: tcel retry --state FAILURE --name tasks.fetch --exception TimeoutError --since 1h asks first with
    the count (--yes skips the question, --dry-run only lists them), then prints each new id; a failure sent
    again leaves the failure index, so a second run does not send it twice.
    """
    from ..result_store import ResultStore

    store = ResultStore(target.url("backend"))
    if task_id is not None:
        if state or name or exception or since or dry_run:
            raise UsageError("give a task ID or --state FAILURE with filters, not both", hint="tcel retry --help")
        from ..call import retry_call
        from ..task_ids import resolve

        task = retry_call(store, resolve(store, task_id))
        send(target, task, Output(json), check=not no_check, wait=wait, timeout=timeout, quiet=quiet)
        return
    if state is None or state.upper() != "FAILURE":
        raise UsageError("give the task ID to retry, or --state FAILURE to retry failures in bulk")
    if wait:
        raise UsageError("--wait follows one task", hint="see bulk retries with 'tcel results --name TASK'")
    from ..failures import Filters
    from ..failures import since as age

    filters = Filters(name=name, exception=exception, since=age(since))
    _bulk(target, store, filters, Output(json), check=not no_check, yes=yes, dry_run=dry_run)


def _bulk(
    target: Target, store: ResultStore, filters: Filters, out: Output, *, check: bool, yes: bool, dry_run: bool
) -> None:
    from ..failures import failures

    chosen = list({failure.id: failure for failure in reversed(failures(store, filters))}.values())[::-1]
    calls, skipped = _calls(store, chosen, out)
    if dry_run or not calls:
        if out.json_mode:
            out.data(
                {"dry_run": dry_run, "retried": [], "would_retry": [_row(f) for f, _ in calls], "skipped": skipped}
            )
        else:
            for failure, _ in calls:
                out.line(f"{failure.id}  {failure.name}  {failure.exception}: {failure.message}")
            out.info(f"{len(calls)} failed task(s) would be retried" if dry_run else "no failures to retry")
        return
    if not yes and not out.confirm(
        f"Retry {len(calls)} failed task(s)?", "bulk retry sends tasks again", hint="pass --yes when not at a terminal"
    ):
        out.info("nothing retried")
        raise typer.Exit(int(ExitCode.FAILURE))
    if check:
        _check(target, sorted({call.name for _, call in calls}), calls[0][1].queue, out)
    sent, taken = _send(target, store, calls, out)
    skipped += [{"id": f.id, "reason": "another retry took it first"} for f, _ in calls if f.id not in taken]
    if out.json_mode:
        out.data({"dry_run": False, "retried": sent, "skipped": skipped})
    else:
        for row in sent:
            out.line(str(row["id"]))
        out.info(f"retried {len(sent)} failed task(s)" + (f"; {len(skipped)} skipped" if skipped else ""))


def _row(failure: Failure) -> dict[str, object]:
    return {"retry_of": failure.id, "task": failure.name, "exception": failure.exception, "message": failure.message}


def _calls(
    store: ResultStore, chosen: list[Failure], out: Output
) -> tuple[list[tuple[Failure, TaskCall]], list[dict[str, str]]]:
    """The call that sends each failure again; those whose arguments the backend no longer keeps are skipped."""
    from ..call import retry_call
    from ..errors import NotFound

    calls, skipped = [], []
    with out.progress("reading failures") as progress:
        for done, failure in enumerate(chosen, 1):
            try:
                calls.append((failure, retry_call(store, failure.id)))
            except (NotFound, UsageError) as error:
                skipped.append({"id": failure.id, "reason": error.message})
            progress(done, len(chosen))
    return calls, skipped


def _check(target: Target, names: list[str], queue: str, out: Output) -> None:
    from ..task_registry import check as check_registered
    from ..workers import known_workers

    for name in names:
        warning = check_registered(target.url("broker"), name, queue, lambda: known_workers(target))
        if warning:
            out.warn(warning)


def _send(
    target: Target, store: ResultStore, calls: list[tuple[Failure, TaskCall]], out: Output
) -> tuple[list[dict[str, object]], set[str]]:
    """Claim the failures, then send each claimed call through one confirmed channel, indexing each as the broker
    confirms it; what was claimed and not confirmed goes back into the failure index. Returns the rows sent and
    the ids of the failures claimed."""
    from ..failures import claim, give_back
    from ..publisher import Sender
    from ..task_index import record_sent
    from ..task_message import new_task_id

    taken = {failure.id for failure in claim(store, [failure for failure, _ in calls])}
    calls = [(failure, call) for failure, call in calls if failure.id in taken]
    jobs = [(call, new_task_id()) for _, call in calls]
    of = {task_id: failure for (failure, _), (_, task_id) in zip(calls, jobs, strict=True)}
    by_id = {task_id: call for call, task_id in jobs}
    sent: list[dict[str, object]] = []
    with out.progress("retrying") as progress, Sender(target.endpoints()) as sender:

        def confirmed(task_id: str, at: float) -> None:
            call = by_id[task_id]
            record_sent(store, task_id, call.name, call.args, call.kwargs, call.queue, at, retry_of=call.retry_of)
            sent.append({"id": task_id, **_row(of[task_id])})
            progress(len(sent), len(jobs))

        try:
            sender.send_many(jobs, confirmed)
        finally:
            done = {str(row["id"]) for row in sent}
            give_back(store, [failure for task_id, failure in of.items() if task_id not in done])
    return sent, taken


def register(app: typer.Typer) -> None:
    app.command()(retry)
