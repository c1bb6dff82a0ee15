"""How the beat's schedule is drawn (`tcel beat`) and the beat's line in `tcel status`, in tables.py's style."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .tables import duration, short, table, when

if TYPE_CHECKING:
    from rich.table import Table

    from .beat_schedule import BeatEntry, BeatState

ARGS_WIDTH = 40


def schedule_table(title: str, state: BeatState) -> Table:
    """One row per entry, by next run: entry, task, arguments (cut), schedule in words, last and next run,
    total runs."""
    return table(
        title,
        ["entry", "task", "arguments", "schedule", "last run", "next run", "runs"],
        [
            [
                e.name,
                e.task,
                short(_arguments(e), ARGS_WIDTH),
                e.every(state.timezone),
                when(e.last_run) or "never",
                when(e.next_run) if e.enabled else "paused",
                e.total_runs,
            ]
            for e in state.entries
        ],
    )


def _arguments(entry: BeatEntry) -> str | None:
    from .task_args import shown

    parts = [shown(entry.args)[1:-1]] if entry.args else []
    parts += [f"{key}={shown(value)}" for key, value in entry.kwargs.items()]
    return ", ".join(parts) or None


def beat_line(state: BeatState, now: float) -> str:
    """`running on beat, last tick 0.4s ago; next: every-second at 12:00:01` (or why it is not)."""
    from .beat_schedule import tick_age

    age = tick_age(state, now)
    running = f"running on {state.host or 'the beat'}" if state.locked else "not running (no beat holds the lock)"
    if age is not None:
        running += f", last tick {age:.1f}s ago" if age < 60 else f", last tick {duration(age)} ago"
    due = state.next_due
    return running + (f"; next: {due.name} at {when(due.next_run)}" if due else "; nothing due")
