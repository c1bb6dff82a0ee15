"""`tcel bench`: how fast the stack runs tasks, end to end."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode
from ..output import Output
from .options import Json, which_stack


class BenchTask(str, Enum):
    tsum = "tsum"
    add = "add"


@which_stack("broker", "backend")
def bench(
    target: Target,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=1_000_000, help="How many tasks to send.")] = 1000,
    task: Annotated[BenchTask, typer.Option(help="Which task to send.")] = BenchTask.tsum,
    size: Annotated[int, typer.Option(min=1, max=100_000, help="Numbers per tsum task.")] = 10,
    timeout: Annotated[float, typer.Option(min=1, help="Stop waiting for results after this many seconds.")] = 600,
    json: Json = False,
) -> None:
    """Send N tasks, collect every result, and report sent/s, completed/s and latency percentiles."""
    from ..tables import bench_table
    from ..throughput import run

    out = Output(json)
    where = target.endpoints()
    with out.progress(f"{count} x tasks.{task.value}") as progress:
        result = run(where, count, task.value, size, timeout, progress)
    if json:
        out.data(result.as_dict())
    else:
        out.render(bench_table(count, result))
    if result.failed:
        raise typer.Exit(int(ExitCode.TASK_FAILED))


def register(app: typer.Typer) -> None:
    app.command()(bench)
