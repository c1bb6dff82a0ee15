"""`tcel bench`: how fast the stack runs tasks, end to end, and how that changes with the number of workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ..endpoints import Target
from ..errors import ExitCode, UsageError
from ..output import Output
from .completion import task_names
from .options import Json, which_stack

if TYPE_CHECKING:
    from ..endpoints import Endpoints
    from ..throughput import BenchResult, BenchTask


@which_stack("broker", "backend")
def bench(
    target: Target,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=1_000_000, help="How many tasks to send.")] = 1000,
    task: Annotated[
        str,
        typer.Option(
            metavar="tsum|add|NAME",
            autocompletion=task_names,
            help="Which task to send: tcel's template's tsum or add (tcel makes their arguments), or any task "
            "of the app by name, with --args.",
        ),
    ] = "tsum",
    args: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help="With --task NAME: its positional arguments, a JSON list sent with every task [default: []].",
        ),
    ] = None,
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
    Any task of the app: 'tcel bench --task proj.tasks.add --args "[2, 3]"'. The workers must know the task:
    tcel asks them first, so that a bench never measures how fast they refuse an unknown one.
    """
    from ..bench_tables import bench_table
    from ..throughput import BenchTask, run

    out = Output(json)
    chosen = BenchTask.parse(task, args, size)
    counts = _counts(workers) if workers is not None else None
    _check_known(target, chosen)
    if counts is not None:
        _by_workers(
            out,
            target,
            counts,
            rounds,
            ready_timeout,
            lambda endpoints: run(endpoints, count, chosen, timeout, lambda *_: None, window),
        )
        return
    where = target.endpoints()
    with out.progress(f"{count} x {chosen.name}") as progress:
        result = run(where, count, chosen, timeout, progress, window)
    if json:
        out.data(result.as_dict())
    else:
        out.render(bench_table(count, result))
    if result.failed:
        raise typer.Exit(int(ExitCode.TASK_FAILED))


def _check_known(target: Target, task: BenchTask) -> None:
    """Refuse a task no running worker knows (a template's task, where the workers run an app without it), or
    a bench with no worker to run it: either would only measure a wait or a refusal."""
    from ..task_registry import knowing, registered
    from ..throughput import ARGS_HINT
    from ..workers import known_workers

    registry = knowing(target.endpoints().broker_url, task.name, "celery", lambda: known_workers(target))
    if not registry.workers:
        raise UsageError("tcel bench: no worker answered", hint="start the workers with 'tcel up'")
    if task.name not in registry.tasks:
        template = " (a task of tcel's template)" if task.template else ""
        raise UsageError(
            f"tcel bench: no running worker knows task {task.name!r}{template}",
            hint=f"{registered(task.name, registry.tasks)}; {ARGS_HINT}",
        )


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
