"""Measuring throughput (`tcel bench`): send N tasks over one connection in a window of publisher confirms,
collect every result in batches, report rates and latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .call import TaskCall
from .endpoints import Endpoints
from .errors import WaitTimeout
from .publisher import Sender, new_task_id
from .result_store import ResultStore, timestamp


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


def task_args(task: str, size: int, n: int) -> list:
    """add(n, 1), or tsum of `size` numbers."""
    return [n, 1] if task == "add" else [list(range(n, n + size))]


def run(
    endpoints: Endpoints,
    count: int,
    task: str,
    size: int,
    timeout: float,
    progress: Callable[[int, int], None],
) -> BenchResult:
    """Send `count` tasks, then wait for all of them; latency is the worker's finish time minus send time."""
    name = f"tasks.{task}"
    store = ResultStore(endpoints.backend_url, timeout=10)
    sent_at: dict[str, float] = {}

    def confirmed(task_id: str, at: float) -> None:
        sent_at[task_id] = at
        if len(sent_at) % 500 == 0:
            progress(0, count)

    calls = ((TaskCall(name, task_args(task, size, n)), new_task_id()) for n in range(count))
    started = time.time()
    with Sender(endpoints) as sender:
        sender.send_many(calls, confirmed)
    sent = time.time()
    finished = _collect(store, list(sent_at), started + timeout, progress)
    done = time.time()
    latencies = sorted(finished[task_id][0] - sent_at[task_id] for task_id in finished)
    return BenchResult(
        task=name,
        tasks=count,
        failed=sum(1 for _, state in finished.values() if state != "SUCCESS"),
        send_seconds=sent - started,
        total_seconds=done - started,
        sent_per_second=count / max(sent - started, 1e-9),
        completed_per_second=count / max(done - started, 1e-9),
        latency_p50=_percentile(latencies, 50),
        latency_p95=_percentile(latencies, 95),
        latency_p99=_percentile(latencies, 99),
    )


def _collect(
    store: ResultStore, ids: list[str], deadline: float, progress: Callable[[int, int], None]
) -> dict[str, tuple[float, str]]:
    """Read results in batches until all are ready: {id: (finished at, state)}."""
    pending = list(ids)
    finished: dict[str, tuple[float, str]] = {}
    while pending:
        ready = store.finished(pending)
        finished.update({task_id: (timestamp(meta["date_done"]), meta["status"]) for task_id, meta in ready.items()})
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
