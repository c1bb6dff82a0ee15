"""How tcel draws things: tables for containers, workers, queues, backend and tasks, as Rich renderables that the
output layer prints (benchmarks: bench_tables.py; the beat's schedule: beat_tables.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .remote_control import max_tasks_per_child, peak_rss_kib, pool_size

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from .beat_schedule import BeatState
    from .overview import Overview
    from .stack.base import ServiceStatus
    from .task_record import TaskRecord


STATS_COLUMNS = ("worker", "pid", "uptime", "pool now", "max concurrency", "prefetch", "processed")
STATS_COLUMNS_MORE = ("max tasks/child", "peak memory")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    from rich.table import Table

    drawn = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:  # a task id cut short keeps 14 characters, a start of it every id command takes
        drawn.add_column(column, min_width=15 if column == "id" else None)
    for row in rows:
        drawn.add_row(*(cell(value) for value in row))
    return drawn


def cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def services_table(project: str, services: list[ServiceStatus]) -> Table:
    """One row per container, or per Swarm task with the node it runs on."""
    on_nodes = any(s.node for s in services)
    nodes = ["node", "replicas"] if on_nodes else []
    return table(
        f"stack {project}",
        ["service", "name", *nodes, "state", "ready", "image", "ports (url)", "uptime", "restarts"],
        [
            [
                s.service,
                s.name,
                *([s.node, _replicas(s.replicas)] if on_nodes else []),
                s.state,
                s.ready,
                s.image,
                s.url or ", ".join(s.ports) or None,
                duration(s.uptime),
                s.restarts or None,
            ]
            for s in services
        ],
    )


def _replicas(counts: tuple[int, int] | None) -> str | None:
    """A Swarm service's running / desired tasks, as `docker service ls` shows them."""
    return f"{counts[0]}/{counts[1]}" if counts else None


def tasks_table(title: str, records: list[TaskRecord]) -> Table:
    return table(
        title,
        ["id", "task", "args", "state", "result", "runtime", "worker"],
        [
            [
                r.id,
                f"{r.name} (beat: {r.periodic})" if r.periodic else r.name,
                short(r.args),
                r.state_text,
                value(r.result) if r.state == "SUCCESS" else r.error,
                seconds(r.runtime),
                r.worker,
            ]
            for r in records
        ],
    )


def task_detail(record: TaskRecord) -> Table:
    """One task, field by field, as `tcel result` shows it."""
    state = f"{record.state} ({record.shown_state.lower()}, not started)" if record.queued else record.state_text
    rows = [
        ("state", state),
        ("result", value(record.result) if record.state == "SUCCESS" else None),
        ("error", record.error),
        ("task", record.name),
        ("args", record.args),
        ("kwargs", record.kwargs),
        ("queue", record.queue),
        ("retry of", record.retry_of),
        ("beat entry", record.periodic),
        ("worker", record.worker),
        ("sent", when(record.sent)),
        ("received", when(record.received)),
        ("started", when(record.started)),
        ("finished", when(record.finished)),
        ("runtime", seconds(record.runtime)),
        *job_rows(record.job),
    ]
    return table(f"task {record.id}", ["field", "value"], [row for row in rows if row[1] is not None])


def job_rows(job: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What a streamed sum's final task summed up: the numbers, the chunk tasks, and their ids (first and last
    when there are many; `--json` lists all)."""
    if job is None:
        return []
    ids = job.get("chunk_ids") or []
    shown_ids = ", ".join(ids) if len(ids) <= 3 else f"{ids[0]}, ... {ids[-1]} ({len(ids)}; --json lists all)"
    return [
        (
            "summed",
            f"{job.get('numbers', 0):,} numbers from a stream, read and sent in {job.get('read_seconds', 0):.1f}s",
        ),
        ("chunks", f"{job.get('chunks', 0):,} x {job.get('chunk_task', 'tasks.tsum_chunk')}: {shown_ids or '-'}"),
    ]


def overview(view: Overview, rate: float | None = None) -> list[RenderableType]:
    """Every part of `tcel status`, in order; a part that failed shows its error in its place."""
    from rich.text import Text

    parts: list[RenderableType] = []

    def failed(name: str) -> bool:
        if name in view.errors:
            parts.append(Text(f"{name}: unavailable: {view.errors[name]}", style="red"))
            return True
        return False

    if not failed("services") and view.services:
        parts.append(services_table(view.project, view.services))
    failed("stack")
    if not failed("workers"):
        title = "workers" + (f"  ({rate:.1f} tasks/s completed)" if rate is not None else "")
        parts.append(
            table(
                title,
                ["worker", "answering", "pool", "active", "reserved", "processed", "peak memory", "registered tasks"],
                [
                    [
                        w.name,
                        w.answering,
                        w.pool,
                        w.active,
                        w.reserved,
                        w.processed,
                        kib(w.peak_rss_kib),
                        ", ".join(w.registered) or None,
                    ]
                    for w in view.workers
                ],
            )
        )
    if not failed("queues"):
        redis = any(q.visibility_timeout is not None for q in view.queues)
        parts.append(
            table(
                "queues",
                # a Redis broker's visibility timeout: an unacked task goes back to its queue and runs again after it
                ["queue", "ready", "unacked (held by workers)", "consumers", *(["visibility timeout"] * redis)],
                [
                    [q.name, q.ready, q.unacked, q.consumers, *([f"{q.visibility_timeout} s"] * redis)]
                    for q in view.queues
                ],
            )
        )
    if not failed("backend") and view.backend:
        b = view.backend
        parts.append(
            table(
                "backend",
                ["redis", "memory used", "keys", "tasks indexed", "failures indexed"],
                [[b.version, b.memory_used, b.keys, b.indexed_tasks, b.indexed_failures]],
            )
        )
    if not failed("tasks"):
        parts.append(tasks_table(f"last {len(view.tasks)} tasks", view.tasks))
    if not failed("beat") and view.beat is not None:
        parts.append(Text(f"beat: {beat_line(view.beat, view.taken_at)} ({len(view.beat.entries)} entries)"))
    if not failed("autoscale") and view.autoscale is not None:
        parts.append(Text(f"autoscale: {view.autoscale.line(view.taken_at)}"))
    return parts


def beat_line(state: BeatState, now: float) -> str:
    """`running on beat, last tick 0.4s ago; next: every-second at 12:00:01` (or why it is not)."""
    from .beat_schedule import tick_age

    age = tick_age(state, now)
    running = f"running on {state.host or 'the beat'}" if state.locked else "not running (no beat holds the lock)"
    if age is not None:
        running += f", last tick {age:.1f}s ago" if age < 60 else f", last tick {duration(age)} ago"
    due = state.next_due
    return running + (f"; next: {due.name} at {when(due.next_run)}" if due else "; nothing due")


def value(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)


def short(text: str | None, width: int = 40) -> str | None:
    return text if text is None or len(text) <= width else text[: width - 1] + "…"


def when(epoch: float | None) -> str | None:
    from .task_record import iso_time

    return iso_time(epoch, sep=" ")


def seconds(amount: float | None) -> str | None:
    return f"{amount:.3f}s" if amount is not None else None


def duration(amount: float | None) -> str | None:
    if amount is None:
        return None
    minutes, secs = divmod(int(amount), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def inspection(method: str, replies: dict[str, Any]) -> Table:
    """What workers answered to `tcel inspect METHOD`: one row per task, task name, id, setting or worker."""
    if method in ("active", "reserved", "scheduled"):
        return table(
            f"{method} tasks",
            ["worker", "id", "task", "args", "kwargs", "queue", "eta" if method == "scheduled" else "started"],
            [_held_task(node, item) for node, items in sorted(replies.items()) for item in items or []],
        )
    if method == "registered":
        holders: dict[str, list[str]] = {}
        for node, names in sorted(replies.items()):
            for name in names or []:
                holders.setdefault(name.split(" ")[0], []).append(node)
        return table("registered tasks", ["task", "workers"], [[n, ", ".join(w)] for n, w in sorted(holders.items())])
    if method == "revoked":
        return table(
            "revoked task ids",
            ["worker", "id"],
            [[node, task_id] for node, ids in sorted(replies.items()) for task_id in ids or []],
        )
    if method == "stats":
        return table(
            "worker stats",
            [*STATS_COLUMNS, *STATS_COLUMNS_MORE],
            [_worker_stats(node, stats) for node, stats in sorted(replies.items())],
        )
    if method == "conf":
        return table(
            "worker settings (as each worker reports them)",
            ["worker", "setting", "value"],
            [
                [node, key, short(brief(setting), 100)]
                for node, conf in sorted(replies.items())
                for key, setting in sorted((conf or {}).items())
            ],
        )
    if method == "query_task":
        return table(
            "tasks as workers hold them",
            ["worker", "id", "state", "task", "args", "kwargs"],
            [
                [node, task_id, state, *_held_task(node, request)[2:5]]
                for node, found in sorted(replies.items())
                for task_id, (state, request) in sorted(found.items())
            ],
        )
    raise ValueError(f"no table for inspect {method}")


def _held_task(node: str, item: dict[str, Any]) -> list[Any]:
    """worker, id, task, args, kwargs, queue, eta or start of a task a worker holds."""
    request = item.get("request", item)  # scheduled entries wrap the request with its eta and priority
    return [
        node,
        request.get("id"),
        request.get("name"),
        short(brief(request.get("args"))),
        short(brief(request.get("kwargs"))),
        (request.get("delivery_info") or {}).get("routing_key"),
        item.get("eta") or when(request.get("time_start")),
    ]


def _worker_stats(node: str, stats: dict[str, Any]) -> list[Any]:
    pool = stats.get("pool") or {}
    return [
        node,
        stats.get("pid"),
        duration(stats.get("uptime")),
        pool_size(stats),
        pool.get("max-concurrency"),
        stats.get("prefetch_count"),
        sum((stats.get("total") or {}).values()),
        max_tasks_per_child(stats),
        kib(peak_rss_kib(stats)),
    ]


def kib(amount: int | None) -> str | None:
    """An amount of KiB as people read it: 812 KiB, 41.5 MiB, 1.2 GiB."""
    if amount is None:
        return None
    if amount < 1024:
        return f"{amount} KiB"
    return f"{amount / 1024:.1f} MiB" if amount < 1024**2 else f"{amount / 1024**2:.1f} GiB"


def control_report(command: str, acknowledged: dict[str, str], refused: dict[str, str], silent: list[str]) -> Table:
    """Who did a control command, who refused it and why, who did not answer."""
    rows = (
        [[node, "acknowledged", said] for node, said in sorted(acknowledged.items())]
        + [[node, "refused", why] for node, why in sorted(refused.items())]
        + [[node, "no answer", None] for node in silent]
    )
    return table(command, ["worker", "outcome", "reply"], rows)


def brief(data: Any) -> str | None:
    """A value as one line: strings as they are, anything else as JSON."""
    import json

    if data is None or isinstance(data, str):
        return data
    return json.dumps(data, default=str)
