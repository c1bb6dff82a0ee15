"""`tcel bench`: how fast the stack runs tasks, end to end, and how that changes with the number of workers."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..output import Output
from .options import Json, which_stack

if TYPE_CHECKING:
    from ..endpoints import Endpoints
    from ..throughput import BenchResult


class BenchTask(StrEnum):
    tsum = "tsum"
    add = "add"


@which_stack("broker", "backend")
def bench(
    target: Target,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=1_000_000, help="How many tasks to send.")] = 1000,
    task: Annotated[BenchTask, typer.Option(help="Which task to send.")] = BenchTask.tsum,
    size: Annotated[int, typer.Option(min=1, max=100_000, help="Numbers per tsum task.")] = 10,
    timeout: Annotated[float, typer.Option(min=1, help="Stop waiting for results after this many seconds.")] = 600,
    window: Annotated[int, typer.Option(min=1, max=100_000, help="Tasks sent ahead of the broker's confirms.")] = 1000,
    workers: Annotated[
        str | None,
        typer.Option(
            metavar="N1,N2",
            help="Run the bench at each of these worker counts (the stack is scaled "
            "to each in turn, then back), e.g. 1,2,4.",
        ),
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=1, max=20, help="With --workers: runs per worker count, the order alternating.")
    ] = 3,
    ready_timeout: Annotated[
        float, typer.Option("--ready-timeout", min=1, help="With --workers: seconds for the workers to answer.")
    ] = 120,
    json: Json = False,
) -> None:
    """Send N tasks, collect every result, and report sent/s, completed/s and latency percentiles.

    Tasks go out in a window of publisher confirms: sent/s counts a task once the broker confirmed it.
    """
    from ..bench_tables import bench_table
    from ..throughput import run

    out = Output(json)
    if workers is not None:
        _by_workers(
            out,
            target,
            _counts(workers),
            rounds,
            ready_timeout,
            lambda endpoints: run(endpoints, count, task.value, size, timeout, lambda *_: None, window),
        )
        return
    where = target.endpoints()
    with out.progress(f"{count} x tasks.{task.value}") as progress:
        result = run(where, count, task.value, size, timeout, progress, window)
    if json:
        out.data(result.as_dict())
    else:
        out.render(bench_table(count, result))
    if result.failed:
        raise typer.Exit(int(ExitCode.TASK_FAILED))


def _counts(option: str) -> list[int]:
    try:
        counts = [int(part) for part in option.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= n <= 32 for n in counts) or len(set(counts)) != len(counts):
        raise UsageError(
            f"--workers {option!r} is not a list of worker counts",
            hint="give distinct numbers from 1 to 32, such as 1,2,4",
        )
    return counts


def _by_workers(
    out: Output,
    target: Target,
    counts: list[int],
    rounds: int,
    ready_timeout: float,
    bench: Callable[[Endpoints], BenchResult],
) -> None:
    """Scale the project's stack to each count in turn (alternating the order each round), bench it, put the
    workers back as they were, and show medians per count; any failed run fails the command."""
    from ..bench_tables import scaling_table
    from ..stack import open_stack
    from ..throughput import by_workers, scaling_summary
    from .up_options import up_options

    if target.given("broker") or target.given("backend"):
        raise UsageError("--workers scales this project's stack", hint="leave out --broker-url and --backend-url")
    stack = open_stack(target.project)
    running = sum(1 for unit in stack.status() if unit.service == "worker") or 1
    options = up_options(target)
    with out.status(f"bench at {', '.join(map(str, counts))} worker(s), {rounds} round(s)") as step:
        try:
            runs = by_workers(stack, options, target.endpoints(), counts, rounds, bench, ready_timeout, step)
        finally:
            step(f"scaling back to {running} worker(s)")
            stack.scale(running, options, ready_timeout, step)
    summary = scaling_summary(runs)
    if out.json_mode:
        out.data({"summary": summary, "runs": [run.as_dict() for run in runs]})
    else:
        out.render(scaling_table(summary))
        for failed in (run for run in runs if run.error):
            out.warn(f"round {failed.round + 1}, {failed.workers} worker(s) failed: {failed.error}")
    if any(run.error for run in runs):
        raise typer.Exit(int(ExitCode.FAILURE))


def register(app: typer.Typer) -> None:
    app.command()(bench)
