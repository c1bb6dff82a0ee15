"""`tcel status` and `tcel watch`: the whole stack in one view."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated

import typer

from ..endpoints import Target
from ..errors import EngineUnreachable, ExitCode
from ..output import Output
from .options import Json, which_stack

if TYPE_CHECKING:
    from ..overview import Overview


@which_stack()
def status(target: Target, json: Json = False) -> None:
    """Show containers, workers, queues, backend and the last 10 tasks.

    Exits 0 when everything answers; 11 when the stack runs but some part is down or not ready (the rest
    is still shown); 8 when the stack is not up at all. A running image created more than 90 days ago gets a
    warning ('tcel up --pull' refreshes it); --json has each service's image_age_days and the image_warnings.
    """
    from .. import tables
    from ..overview import gather
    from ..stack import open_stack

    out = Output(json)
    view = gather(open_stack(target.project))
    if "services" in view.failures and not view.services and isinstance(view.failures["services"], EngineUnreachable):
        raise view.failures["services"]  # without the engine there is no stack to show: exit 3, one line
    if json:
        out.data({**view.as_dict(), "up": view.up})
    elif not view.up:
        out.info(f"stack {view.project} is not up (no containers); start it with 'tcel up'")
    else:
        out.render(*tables.overview(view))
        for warning in view.image_warnings:  # on stderr, after the view; the exit code does not change
            out.warn(warning)
    if view.exit_code != ExitCode.OK:
        raise typer.Exit(int(view.exit_code))


@which_stack()
def watch(
    target: Target,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after this many refreshes.")] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes.")] = 1.0,
    json: Json = False,
) -> None:
    """Show the status view live, refreshed every second, with tasks/s completed, until Ctrl-C.

    Without a terminal each refresh is printed in turn (with --json, one JSON document per line).
    """
    from .. import tables
    from ..overview import gather
    from ..stack import open_stack

    out = Output(json)
    stack = open_stack(target.project)
    previous: Overview | None = None
    frames = 0
    live = out.live() if out.stdout.is_terminal and not json else None
    try:
        with live or nullcontext():
            while count is None or frames < count:
                started = time.monotonic()
                view = gather(stack)
                rate = _rate(previous, view)
                if json:
                    out.json_line({**view.as_dict(), "tasks_per_second": rate})
                elif live is not None:
                    live.update(out.group(*tables.overview(view, rate)), refresh=True)
                else:
                    out.render(*tables.overview(view, rate))
                    out.line("")
                previous, frames = view, frames + 1
                if count is None or frames < count:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass


def _rate(previous: Overview | None, view: Overview) -> float | None:
    """Tasks completed per second between two views, from the workers' processed counters."""
    if previous is None or not view.workers:
        return None
    elapsed = view.taken_at - previous.taken_at
    done = view.processed - previous.processed
    return max(0.0, done / elapsed) if elapsed > 0 else None


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(watch)
