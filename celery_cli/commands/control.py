"""`tcel revoke` and `tcel purge`: controlling tasks that are queued or running."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..output import Output
from .options import Json, which_stack


@which_stack("broker")
def revoke(
    target: Target,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task to revoke.")],
    terminate: Annotated[bool, typer.Option("--terminate", help="Also kill it if it is running now.")] = False,
    json: Json = False,
) -> None:
    """Revoke a task: a queued one will never run; with --terminate a running one is killed."""
    from ..remote_control import Control

    out = Output(json)
    with Control(target.url("broker")) as control:
        workers = control.revoke(task_id.strip(), terminate=terminate)
    if json:
        out.data({"id": task_id, "revoked": bool(workers), "workers": workers, "terminate": terminate})
    elif workers:
        out.success(f"revoked {task_id} on {', '.join(sorted(workers))}")
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
    with Control(target.url("broker")) as control:
        waiting = control.queued()
        if waiting and not yes:
            if not sys.stdin.isatty():
                raise UsageError("purge deletes queued tasks", hint="pass --yes to confirm when not at a terminal")
            if not typer.confirm(f"Delete {waiting} queued task(s)?", err=True):
                out.info("nothing purged")
                raise typer.Exit(int(ExitCode.FAILURE))
        purged = control.purge() if waiting else 0
    if json:
        out.data({"purged": purged})
    else:
        out.success(f"purged {purged} queued task(s)")


def register(app: typer.Typer) -> None:
    app.command()(revoke)
    app.command()(purge)
