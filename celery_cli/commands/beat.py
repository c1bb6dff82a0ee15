"""`tcel beat` (the schedule the stack's beat runs, read from Redis), `tcel beat run NAME` (send an entry's task
now), `tcel beat pause NAME` and `tcel beat resume NAME`."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ..endpoints import Target
from ..output import Output
from .options import Json, Quiet, TaskTimeout, Wait, which_stack

beat_app = typer.Typer(
    name="beat",
    invoke_without_command=True,
    rich_markup_mode=None,
)
EntryName = Annotated[str, typer.Argument(metavar="NAME", help="The entry's name, as 'tcel beat' lists it.")]
DATABASE_NOTE = (
    "the project uses django-celery-beat: entries kept in its database (PeriodicTask) are managed there, in "
    "Django's admin; tcel's beat runs the app's beat_schedule and add_periodic_task entries, listed here"
)


@beat_app.callback()
@which_stack("backend")
def schedule(ctx: typer.Context, target: Target, json: Json = False) -> None:
    """Show the periodic tasks the stack's beat sends (up --beat); run, pause or resume one.

    The schedule: entry, task, arguments, schedule in words, last and next run, total runs.

    Read from the stack's Redis (RedBeat's keys), without the project's code. Entries of a database scheduler
    (django-celery-beat) are named as managed there. Exit 8 when the schedule is empty and no beat runs.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .. import beat_schedule
    from ..beat_tables import schedule_table
    from ..errors import NotRunning
    from ..project_app import uses_database_scheduler
    from ..result_store import ResultStore
    from ..tables import beat_line

    out = Output(json)
    state = beat_schedule.read(ResultStore(target.url("backend")))
    notes = [DATABASE_NOTE] if uses_database_scheduler(target.project.directory) else []
    if not state.entries and not state.locked:
        raise NotRunning(
            f"stack {target.project.name} has no beat schedule in its Redis",
            hint="run 'tcel up --beat' to start the beat" + (f" ({notes[0]})" if notes else ""),
        )
    if out.json_mode:
        out.data({**state.as_dict(), "notes": notes})
        return
    out.render(schedule_table(f"beat schedule ({len(state.entries)} entries)", state))
    out.info(f"beat: {beat_line(state, time.time())}")
    for note in notes:
        out.info(f"note: {note}")


@beat_app.command()
@which_stack("broker", "backend")
def run(
    target: Target,
    name: EntryName,
    wait: Wait = False,
    timeout: TaskTimeout = 60,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Send an entry's task now, with its arguments, queue, expires (in seconds) and priority; its schedule is
    left as it is. Other options of the entry (exchange, routing_key, headers...) are named as not applied.

    The task carries the entry's name (header periodic_task_name), as the beat's own sends do: 'tcel results'
    shows it.
    """
    from .. import beat_schedule
    from ..result_store import ResultStore
    from .sending import send

    entry = beat_schedule.find(ResultStore(target.url("backend")), name)
    task, left = beat_schedule.entry_call(entry)
    out = Output(json)
    if left:
        out.warn(
            f"entry {entry.name!r}: its option(s) {', '.join(left)} are not applied by 'beat run'"
            " (the beat's own sends apply them)"
        )
    send(target, task, out, wait=wait, timeout=timeout, quiet=quiet)


@beat_app.command()
@which_stack("backend")
def pause(target: Target, name: EntryName, json: Json = False) -> None:
    """Stop sending an entry's task until 'tcel beat resume NAME' (kept across beat restarts)."""
    _set_enabled(target, name, False, Output(json))


@beat_app.command()
@which_stack("backend")
def resume(target: Target, name: EntryName, json: Json = False) -> None:
    """Send a paused entry's task again; a run that fell due while paused is sent at the beat's next tick."""
    _set_enabled(target, name, True, Output(json))


def _set_enabled(target: Target, name: str, enabled: bool, out: Output) -> None:
    from .. import beat_schedule
    from ..result_store import ResultStore

    changed = beat_schedule.set_enabled(ResultStore(target.url("backend")), name, enabled)
    if out.json_mode:
        out.data({"name": name, "enabled": enabled, "changed": changed})
        return
    verb = "resumed" if enabled else "paused"
    out.success(f"beat entry {name} {verb}" if changed else f"beat entry {name} was already {verb}")


def register(app: typer.Typer) -> None:
    app.add_typer(beat_app)
