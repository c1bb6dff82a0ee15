"""How `tcel bench` draws its results, in tables.py's style."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tables import table

if TYPE_CHECKING:
    from rich.table import Table

    from .throughput import BenchResult


def bench_table(count: int, result: BenchResult) -> Table:
    latencies = (result.latency_p50, result.latency_p95, result.latency_p99)
    return table(
        f"bench: {count} x {result.task}",
        ["sent/s", "completed/s", "p50", "p95", "p99", "failed", "total"],
        [
            [
                f"{result.sent_per_second:.0f}",
                f"{result.completed_per_second:.0f}",
                *(f"{latency * 1000:.1f} ms" for latency in latencies),
                result.failed,
                f"{result.total_seconds:.2f}s",
            ]
        ],
    )


def scaling_table(summary: list[dict[str, Any]]) -> Table:
    """`tcel bench --workers`: medians per worker count over the runs that succeeded."""

    def shown(value: float | None, unit: str) -> str:
        if value is None:
            return "-"
        return f"{value * 1000:.0f} ms" if unit == "ms" else f"{value:.0f}"

    return table(
        "bench by worker count (medians of the runs that succeeded)",
        ["workers", "runs", "failed", "completed/s", "sent/s", "p50", "p95"],
        [
            [
                row["workers"],
                row["runs"],
                row["failed_runs"],
                shown(row["completed_per_second"], "/s"),
                shown(row["sent_per_second"], "/s"),
                shown(row["latency_p50"], "ms"),
                shown(row["latency_p95"], "ms"),
            ]
            for row in summary
        ],
    )
