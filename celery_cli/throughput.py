"""Measuring throughput (`tcel bench`): send N tasks over one connection in a window of publisher confirms,
collect every result in batches, report rates and latency; and the same at several worker counts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .endpoints import Endpoints
from .errors import TcelError, UsageError, WaitTimeout
from .publisher import WINDOW, Sender
from .result_store import ResultStore
from .task_call import TaskCall
from .task_message import new_task_id
from .task_record import timestamp

if TYPE_CHECKING:
    from .stack.base import Stack, UpOptions


@dataclass
class BenchResult:
    task: str
    tasks: int
    failed: int
    send_seconds: float
    total_seconds: float
    sent_per_second: float
    completed_per_second: float
    latency_p50: float
    latency_p95: float
    latency_p99: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def task_args(task: str, size: int, n: int) -> list[Any]:
    """add(n, 1), or tsum of `size` numbers."""
    return [n, 1] if task == "add" else [list(range(n, n + size))]


TEMPLATE_TASKS = ("tsum", "add")


@dataclass(frozen=True)
class BenchTask:
    """What `tcel bench` sends: tcel's template's tsum or add, with arguments made for each task, or any task
    of the app by name, with the same arguments each time."""

    name: str
    args: list[Any] | None = None  # None: made for each task (a template's task)
    size: int = 10  # numbers per tsum

    @classmethod
    def parse(cls, task: str, args: str | None, size: int) -> BenchTask:
        from .task_args import parse_json_arg

        if task in TEMPLATE_TASKS:
            if args is not None:
                raise UsageError(f"--args goes with a task given by name, not with --task {task}", hint=ARGS_HINT)
            return cls(f"tasks.{task}", None, size)
        if not task.strip() or any(c.isspace() for c in task):
            raise UsageError(f"--task {task!r} is not a task name", hint=ARGS_HINT)
        values = parse_json_arg(args) if args is not None else []
        if not isinstance(values, list):
            raise UsageError(f"--args {args!r} is not a JSON list of arguments", hint=ARGS_HINT)
        return cls(task, values, size)

    @property
    def template(self) -> bool:
        return self.args is None

    def args_of(self, n: int) -> list[Any]:
        return task_args(self.name.removeprefix("tasks."), self.size, n) if self.args is None else self.args


ARGS_HINT = "for example --task tsum, or --task proj.tasks.add --args '[2, 3]'"


def run(
    endpoints: Endpoints,
    count: int,
    task: BenchTask,
    timeout: float,
    progress: Callable[[int, int], None],
    window: int = WINDOW,
) -> BenchResult:
    """Send `count` tasks in a window of confirms, then wait for all of them; latency is the worker's finish
    time minus the task's publish time. Sent/s counts a task once the broker confirmed it."""
    name = task.name
    if endpoints.backend_url is None:
        raise UsageError("tcel bench needs a result backend", hint="pass --backend-url or start the stack")
    store = ResultStore(endpoints.backend_url, timeout=10)
    sent_at: dict[str, float] = {}

    def confirmed(task_id: str, at: float) -> None:
        sent_at[task_id] = at
        if len(sent_at) % 500 == 0:
            progress(0, count)

    calls = ((TaskCall(name, task.args_of(n)), new_task_id()) for n in range(count))
    started = time.time()
    with Sender(endpoints, window=window) as sender:
        sender.send_many(calls, confirmed, total=count)
        sent = time.time()  # the last confirm
    first = min(sent_at.values())  # sent/s runs from the first publish, as the broker's ceiling is measured
    finished = _collect(store, list(sent_at), started + timeout, progress)
    done = time.time()
    latencies = sorted(finished[task_id][0] - sent_at[task_id] for task_id in finished)
    return BenchResult(
        task=name,
        tasks=count,
        failed=sum(1 for _, state in finished.values() if state != "SUCCESS"),
        send_seconds=sent - first,
        total_seconds=done - started,
        sent_per_second=count / max(sent - first, 1e-9),
        completed_per_second=count / max(done - started, 1e-9),
        latency_p50=_percentile(latencies, 50),
        latency_p95=_percentile(latencies, 95),
        latency_p99=_percentile(latencies, 99),
    )


@dataclass
class ScalingRun:
    """One bench run at one worker count; a run that failed has its error instead of a result."""

    workers: int
    round: int
    result: BenchResult | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "round": self.round,
            "error": self.error,
            **(self.result.as_dict() if self.result else {}),
        }


def by_workers(
    stack: Stack,
    options: UpOptions,
    endpoints: Endpoints,
    counts: list[int],
    rounds: int,
    bench: Callable[[Endpoints], BenchResult],
    ready_timeout: float,
    step: Callable[[str], None],
) -> list[ScalingRun]:
    """Run `bench` at every worker count, `rounds` times, the order alternating each round (1 2 4, 4 2 1, ...)
    so that a machine getting busier or quieter does not favour one count; the stack is scaled before each run
    and all its workers answer first. A run whose tasks failed, or that raised, is a failed run."""
    runs: list[ScalingRun] = []
    running = None
    for round_ in range(rounds):
        for workers in counts if round_ % 2 == 0 else counts[::-1]:
            step(f"round {round_ + 1}/{rounds}: {workers} worker(s)")
            if workers != running:
                stack.scale(workers, options, ready_timeout, step)
                running = workers
            try:
                result = bench(endpoints)
            except TcelError as exc:
                runs.append(ScalingRun(workers, round_, error=str(exc)))
                continue
            error = f"{result.failed} of {result.tasks} tasks failed" if result.failed else None
            runs.append(ScalingRun(workers, round_, result, error))
    return runs


def scaling_summary(runs: list[ScalingRun]) -> list[dict[str, Any]]:
    """Per worker count: runs and failed runs, and the medians of the runs that succeeded."""
    rows = []
    for workers in sorted({run.workers for run in runs}):
        ok = [run.result for run in runs if run.workers == workers and run.error is None and run.result]
        row: dict[str, Any] = {
            "workers": workers,
            "runs": sum(1 for run in runs if run.workers == workers),
            "failed_runs": sum(1 for run in runs if run.workers == workers and run.error),
        }
        for key in ("completed_per_second", "sent_per_second", "latency_p50", "latency_p95"):
            row[key] = round(statistics.median(getattr(r, key) for r in ok), 4) if ok else None
        rows.append(row)
    return rows


def _collect(
    store: ResultStore, ids: list[str], deadline: float, progress: Callable[[int, int], None]
) -> dict[str, tuple[float, str]]:
    """Read results in batches until all are ready: {id: (finished at, state)}."""
    pending = list(ids)
    finished: dict[str, tuple[float, str]] = {}
    while pending:
        ready = store.finished(pending)
        finished.update(
            {task_id: (timestamp(meta["date_done"]) or time.time(), meta["status"]) for task_id, meta in ready.items()}
        )
        pending = [task_id for task_id in pending if task_id not in ready]
        progress(len(finished), len(ids))
        if pending:
            if time.time() > deadline:
                raise WaitTimeout(
                    f"{len(pending)} of {len(ids)} tasks unfinished at the deadline",
                    hint="raise --timeout, or check 'tcel status'",
                )
            time.sleep(0.02)
    return finished


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return values[index]
