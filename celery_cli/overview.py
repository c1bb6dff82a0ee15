"""Everything `tcel status` and `tcel watch` show, gathered in parallel; each part fails on its own."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .credentials import state_file
from .errors import ExitCode, NotRunning, TcelError
from .names import QUEUE
from .queues import QueueInfo, queues
from .remote_control import Control, max_tasks_per_child, peak_rss_kib, pool_size, worker_node
from .result_store import ResultStore
from .stack.base import ServiceStatus, Stack
from .task_record import BackendInfo, TaskRecord

if TYPE_CHECKING:
    from .autoscale_state import AutoscaleState
    from .beat_schedule import BeatState
    from .credentials import Credentials

PART_TIMEOUT = 0.5
METRICS_TIMEOUT = 2.0  # a scrape of the exporter reads the stack itself: about half a second
RECENT_TASKS = 10
BEAT_STALE = 30  # seconds without a tick after which the beat is not ready (it ticks at least every 5 s)
AUTOSCALE_STALE = 15  # seconds without a decision after which the autoscaler is not ready (it decides every second)


@dataclass
class WorkerInfo:
    name: str
    answering: bool
    pool: int | None = None
    active: int | None = None
    reserved: int | None = None
    processed: int | None = None
    peak_rss_kib: int | None = None  # the worker's main process at its largest (Celery's rusage maxrss, KiB)
    max_tasks_per_child: int | None = None  # a pool process is replaced after this many tasks (None: never)
    registered: list[str] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # tasks running or reserved, by the queue they came from


@dataclass
class Overview:
    """The parts of the view; a part that could not be read has its error in `failures` instead."""

    project: str
    engine: str = ""  # which engine runs the stack: containers or swarm
    services: list[ServiceStatus] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    queues: list[QueueInfo] = field(default_factory=list)
    backend: BackendInfo | None = None
    tasks: list[TaskRecord] = field(default_factory=list)
    beat: BeatState | None = None  # the beat's schedule and heartbeat, when the stack runs a beat
    autoscale: AutoscaleState | None = None  # the autoscaler's newest decision, when the stack runs one
    failures: dict[str, TcelError] = field(default_factory=dict)
    taken_at: float = field(default_factory=time.time)

    @property
    def errors(self) -> dict[str, str]:
        return {part: str(error) for part, error in self.failures.items()}

    @property
    def up(self) -> bool:
        return bool(self.services) or "services" in self.failures

    @property
    def healthy(self) -> bool:
        """Every part read, every container running and ready, every worker answering."""
        return (
            not self.failures
            and all(s.state == "running" and s.ready for s in self.services)
            and all(w.answering for w in self.workers)
        )

    @property
    def exit_code(self) -> ExitCode:
        """What `tcel status` exits with: not up (8), up but degraded (11), or healthy (0)."""
        if not self.up:
            return ExitCode.NOT_RUNNING
        return ExitCode.OK if self.healthy else ExitCode.DEGRADED

    @property
    def image_warnings(self) -> list[str]:
        """One line per image older than 90 days that a running service runs."""
        from .stack.image_age import image_warnings

        return image_warnings(self.services)

    @property
    def processed(self) -> int:
        return sum(w.processed or 0 for w in self.workers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "engine": self.engine,
            "healthy": self.healthy,
            "services": [s.as_dict() for s in self.services],
            "workers": [asdict(w) for w in self.workers],
            "queues": [asdict(q) for q in self.queues],
            "backend": asdict(self.backend) if self.backend else None,
            "tasks": [t.as_dict() for t in self.tasks],
            "beat": self.beat.as_dict() if self.beat else None,
            "image_warnings": self.image_warnings,
            "autoscale": self.autoscale.as_dict() if self.autoscale else None,
            "errors": self.errors,
        }


def gather(stack: Stack) -> Overview:
    """Read containers, workers, queues, backend and recent tasks at once, each with a short timeout."""
    from concurrent.futures import ThreadPoolExecutor

    overview = Overview(stack.project.name, stack.engine)
    access = stack.endpoints()
    with ThreadPoolExecutor(max_workers=8) as pool:
        services = pool.submit(stack.status)
        parts: dict[str, Callable[[], Any]] = {}
        if access is None:
            overview.failures["stack"] = NotRunning(
                f"no credentials in {state_file(stack.project)}", hint="run 'tcel up'"
            )
        else:
            store = ResultStore(access.backend_url(), timeout=PART_TIMEOUT)
            parts = {
                "queues": lambda: queues(access, _consumed(access.broker_url(), _worker_nodes(services)), PART_TIMEOUT),
                "backend": store.info,
                "tasks": lambda: store.recent(RECENT_TASKS),
                "workers": lambda: _workers(access.broker_url(), _worker_nodes(services)),
                "beat": lambda: _beat(store, services),
                "autoscale": lambda: _autoscale(store, services),
            }
        futures = {name: pool.submit(read) for name, read in parts.items()}
        flower = pool.submit(_flower, access, services) if access is not None else None
        exporter = pool.submit(_metrics, access, services) if access is not None else None
        overview.services = _collect(services, "services", overview, [])
        for name, future in futures.items():
            setattr(overview, name, _collect(future, name, overview, getattr(overview, name)))
        if flower is not None:
            _collect(flower, "flower", overview, None)
        if exporter is not None:
            _collect(exporter, "metrics", overview, None)
    _readiness(overview, access)
    if "workers" not in overview.failures:
        # with late acks every message a worker holds, running or reserved, is unacknowledged
        for queue in overview.queues:
            if queue.visibility_timeout is None:  # Redis counts its unacked messages itself, dead workers' too
                queue.unacked = sum(w.held.get(queue.name, 0) for w in overview.workers)
    return overview


def _consumed(broker_url: str, nodes: tuple[list[str], list[str]] | None) -> list[str]:
    """Celery's default queue, then every queue the running workers (or, without Docker, whoever answers) consume."""
    running = nodes[0] if nodes is not None else None
    with Control(broker_url) as control:
        replies = control.inspect("active_queues", running, PART_TIMEOUT)
    consumed = {queue["name"] for queues in replies.values() for queue in queues or []}
    return [QUEUE, *sorted(consumed - {QUEUE})]


def _flower(access: Credentials, services: Any) -> None:
    """Flower (when the stack runs one) answers, takes its login and lists the answering workers."""
    from .probes import probe_flower

    if any(s.service == "flower" and s.state == "running" for s in services.result()):
        probe_flower(access, [], PART_TIMEOUT)


def _metrics(access: Credentials, services: Any) -> None:
    """The exporter (when the stack runs one) answers a scrape with its login."""
    from .probes import probe_metrics

    if any(s.service == "metrics" and s.state == "running" for s in services.result()):
        probe_metrics(access, METRICS_TIMEOUT)


def _beat(store: ResultStore, services: Any) -> BeatState | None:
    """The beat's schedule and last tick, when the stack has a beat."""
    from .beat_schedule import read

    return read(store) if any(s.service == "beat" for s in services.result()) else None


def _autoscale(store: ResultStore, services: Any) -> AutoscaleState | None:
    """The autoscaler's newest decision, when the stack has an autoscaler."""
    from .autoscale_state import read

    return read(store) if any(s.service == "autoscaler" for s in services.result()) else None


def _readiness(overview: Overview, access: Credentials | None) -> None:
    """Ready, from the parts just read: the broker took a login (queues), the backend an authenticated
    command (backend), a worker answered (workers). No second round of probes."""
    if "stack" in overview.failures:
        return  # no credentials: readiness stays unknown
    answering = {w.name for w in overview.workers if w.answering}
    for s in overview.services:
        if s.service == "flower" and access is not None:
            s.url = access.flower_url()
        if s.service == "metrics" and access is not None:
            s.url = access.metrics_url()
        if s.state != "running":
            continue
        if s.service in ("flower", "metrics"):
            s.ready = s.service not in overview.failures
        elif s.service == "broker":
            s.ready = "queues" not in overview.failures
        elif s.service == "backend":
            s.ready = "backend" not in overview.failures
        elif s.service == "worker":
            s.ready = worker_node(s.hostname) in answering
        elif s.service == "autoscaler":
            decided = overview.autoscale
            s.ready = decided is not None and time.time() - decided.at < AUTOSCALE_STALE
        elif s.service == "beat":
            beat = overview.beat
            s.ready = beat is not None and beat.locked and time.time() - (beat.last_tick or 0) < BEAT_STALE


def _collect(future: Any, name: str, overview: Overview, default: Any) -> Any:
    try:
        return future.result()
    except TcelError as error:
        overview.failures[name] = error
        return default


def _worker_nodes(services: Any) -> tuple[list[str], list[str]] | None:
    """Node names of the (running, stopped) worker containers; None when Docker could not be read."""
    try:
        listed = [s for s in services.result() if s.service == "worker"]
    except TcelError:
        return None
    running = [worker_node(s.hostname) for s in listed if s.state == "running"]
    return running, [worker_node(s.hostname) for s in listed if s.state != "running"]


def _workers(broker_url: str, nodes: tuple[list[str], list[str]] | None) -> list[WorkerInfo]:
    """Ask the running workers (or, without Docker, whoever answers) for stats, active and registered tasks."""
    running, stopped = nodes if nodes is not None else (None, [])
    answering: list[str] = []
    stats: dict[str, Any] = {}
    active: dict[str, Any] = {}
    registered: dict[str, Any] = {}
    reserved: dict[str, Any] = {}
    if running != []:
        with Control(broker_url) as control:
            stats = control.inspect("stats", running, PART_TIMEOUT)
            answering = sorted(stats)
            if answering:
                active = control.inspect("active", answering, PART_TIMEOUT)
                reserved = control.inspect("reserved", answering, PART_TIMEOUT)
                registered = control.inspect("registered", answering, PART_TIMEOUT)
    workers = [
        WorkerInfo(
            name=name,
            answering=True,
            pool=pool_size(stats[name]),
            active=len(active.get(name) or []),
            reserved=len(reserved.get(name) or []),
            processed=sum((stats[name].get("total") or {}).values()),
            peak_rss_kib=peak_rss_kib(stats[name]),
            max_tasks_per_child=max_tasks_per_child(stats[name]),
            registered=sorted(t.split(" ")[0] for t in registered.get(name) or [] if not t.startswith("celery.")),
            held=dict(
                Counter(
                    (task.get("delivery_info") or {}).get("routing_key") or QUEUE
                    for task in (active.get(name) or []) + (reserved.get(name) or [])
                )
            ),
        )
        for name in answering
    ]
    silent = [name for name in (running or []) if name not in stats] + stopped
    return workers + [WorkerInfo(name=name, answering=False) for name in sorted(silent)]
