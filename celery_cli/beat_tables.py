"""How the beat's schedule is drawn (`tcel beat`), in tables.py's style (the beat's line: tables.beat_line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .tables import short, table, when

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
