"""`tcel bench --workers`: the order of the runs, and a failed run counted as a failure, not as a fast run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from celery_cli.cli import app
from celery_cli.endpoints import Endpoints
from celery_cli.errors import ExitCode, WaitTimeout
from celery_cli.throughput import BenchResult, by_workers, scaling_summary


class RecordingStack:
    def __init__(self) -> None:
        self.scaled: list[int] = []

    def scale(self, workers: int, options: object, ready_timeout: float, progress: object) -> None:
        self.scaled.append(workers)


def result(rate: float, failed: int = 0) -> BenchResult:
    return BenchResult("tasks.tsum", 100, failed, 0.1, 100 / rate, 1000.0, rate, 0.01, 0.02, 0.03)


def test_runs_alternate_their_order_and_a_failed_run_is_not_a_fast_one() -> None:
    stack, order = RecordingStack(), []
    outcomes = iter([result(100), result(200), result(900, failed=3), WaitTimeout("late"), result(210), result(110)])

    def bench(endpoints: Endpoints) -> BenchResult:
        order.append(stack.scaled[-1])
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    runs = by_workers(stack, None, Endpoints("amqp://x", "redis://x"), [1, 2, 4], 2, bench, 1, lambda text: None)
    assert order == [1, 2, 4, 4, 2, 1] and stack.scaled == [1, 2, 4, 2, 1]  # 4 twice in a row: scaled once
    summary = {row["workers"]: row for row in scaling_summary(runs)}
    assert summary[4]["failed_runs"] == 2 and summary[4]["completed_per_second"] is None  # not 900/s
    assert summary[2]["completed_per_second"] == 205 and summary[1]["failed_runs"] == 0


def test_worker_counts_must_be_a_list_of_small_distinct_numbers(tmp_path) -> None:
    for bad in ("1,x", "0,2", "2,2", ","):
        done = CliRunner().invoke(app, ["bench", "--workers", bad, "--project-dir", str(tmp_path)])
        assert done.exit_code == ExitCode.USAGE and "--workers" in done.output, (bad, done.output)


def test_bench_sends_the_templates_tasks_or_any_task_by_name_with_its_args() -> None:
    from celery_cli.errors import UsageError
    from celery_cli.throughput import BenchTask

    tsum = BenchTask.parse("tsum", None, 3)
    assert (tsum.name, tsum.template, tsum.args_of(5)) == ("tasks.tsum", True, [[5, 6, 7]])
    assert BenchTask.parse("add", None, 10).args_of(4) == [4, 1]
    own = BenchTask.parse("proj.tasks.add", "[2, 3]", 10)
    assert (own.name, own.template, own.args_of(0), own.args_of(9)) == ("proj.tasks.add", False, [2, 3], [2, 3])
    assert BenchTask.parse("proj.tasks.ping", None, 10).args_of(0) == []
    for task, args in (("tsum", "[1]"), ("proj.tasks.add", '{"x": 1}'), ("proj.tasks.add", "[1,"), (" ", None)):
        with pytest.raises(UsageError):
            BenchTask.parse(task, args, 10)
