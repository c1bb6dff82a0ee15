"""Waiting until a stack works, on either engine: the broker takes a login, the backend a PING, every worker a
Celery ping, Flower (when the stack has it) lists every worker, the exporter (likewise) answers a scrape. Each
engine's readiness.py adds its own check that fails at once when a service exits meanwhile."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..credentials import Credentials
from ..errors import ServiceUnreachable, WaitTimeout
from ..output import Progress
from ..probes import (
    BrokerRefusedLogin,
    FlowerRefusedLogin,
    MetricsRefusedLogin,
    probe_backend,
    probe_broker,
    probe_flower,
    probe_metrics,
)
from ..remote_control import Control
from ..settings import Project

PROBE_TIMEOUT = 0.5
PING_TIMEOUT = 0.1  # a worker that is not consuming yet misses a ping: ask again soon
ALIVE_CHECK_INTERVAL = 1.0
# A worker that logs one of these after the broker has answered for a while is not booting: it cannot stay
# connected (wrong credentials, or a Celery whose queues or prefetch the broker denies: see "Ready means" in
# docs/architecture.md).
BROKER_TROUBLE = re.compile(
    r"Cannot connect to (?:amqp|redis)|Connection to broker lost|ACCESS_REFUSED|INTERNAL_ERROR|PRECONDITION_FAILED"
    r"|NOT_ALLOWED|WRONGPASS"
)
BROKER_GRACE = 3.0
FLOWER_PROBE_INTERVAL = 0.25  # two HTTP requests each time: less often than the cheap probes
BEAT_PROBE_INTERVAL = 0.25
METRICS_PROBE_TIMEOUT = 3.0  # a scrape reads the stack: about half a second


def _trusted_broker_url(access: Credentials) -> str:
    """The broker's URL, its amqps:// verified against the stack's authority when the stack serves TLS."""
    from ..broker_tls import trust

    trust(access)
    return access.broker_url()


@dataclass(frozen=True)
class Ready:
    """A stack that answers: after how many seconds, and the Celery node names of its workers."""

    seconds: float
    workers: frozenset[str]


def wait_until_answering(
    access: Credentials,
    workers: set[str],
    check: Callable[[set[str], float | None], None],
    timeout: float,
    progress: Progress,
    flower: bool = False,
    beat: bool = False,
    metrics: bool = False,
) -> float:
    """Wait until the broker takes a login, the backend a PING, every worker node a ping, with `flower` until
    Flower lists every worker, with `beat` until the beat ticks (beat_schedule.ticking) and with `metrics` until
    the exporter answers a scrape; return seconds. `check(pending workers, when the broker first answered)` runs
    every second and raises when the engine says a service failed (whichever engine runs them)."""
    started = time.monotonic()
    deadline = started + timeout
    pending = {"broker", "backend", *workers, *_extras(flower=flower, beat=beat, metrics=metrics)}
    flower_probed, flower_missing, beat_probed = 0.0, "", 0.0
    began = time.time()
    last_check = 0.0
    broker_answered: float | None = None  # epoch seconds
    with Control(_trusted_broker_url(access)) as control:
        _ = control.app  # import Celery while the broker boots, not after it answers
        while True:
            pending -= _services_answering(access, pending)
            if "broker" not in pending and pending & workers:
                broker_answered = broker_answered or time.time()
                pending -= control.ping(sorted(pending & workers), PING_TIMEOUT)
            if pending == {"flower"} and time.monotonic() - flower_probed > FLOWER_PROBE_INTERVAL:
                flower_probed = time.monotonic()
                flower_missing = _flower_missing(access, sorted(workers))
                if not flower_missing:
                    pending.discard("flower")
            if "beat" in pending and "backend" not in pending and time.monotonic() - beat_probed > BEAT_PROBE_INTERVAL:
                beat_probed = time.monotonic()
                if _beat_ticking(access, began):
                    pending.discard("beat")
            if not pending:
                return time.monotonic() - started
            if time.monotonic() - last_check > ALIVE_CHECK_INTERVAL:
                check(pending & workers, broker_answered)
                last_check = time.monotonic()
            waiting = ", ".join(sorted(_label(p) for p in pending))
            progress(f"waiting for {waiting}")
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"{waiting} not ready after {timeout:.0f}s" + (f": {flower_missing}" if flower_missing else ""),
                    hint="see 'tcel status' and 'tcel logs', or raise --ready-timeout",
                )
            time.sleep(0.05)


def _extras(**wanted: bool) -> list[str]:
    return [service for service, asked in wanted.items() if asked]


def _services_answering(access: Credentials, pending: set[str]) -> set[str]:
    """The broker and backend among `pending` that answer now, and the exporter once they do; a refused login is
    raised at once."""
    answering = set()
    for service, probe in (("broker", probe_broker), ("backend", probe_backend)):
        if service in pending:
            try:
                probe(access, PROBE_TIMEOUT)
                if service == "backend":
                    _load_index_function(access)
                answering.add(service)
            except BrokerRefusedLogin:
                raise
            except ServiceUnreachable:
                pass
    if "metrics" in pending and not (pending - answering) & {"broker", "backend"} and _metrics_answer(access):
        answering.add("metrics")
    return answering


def _load_index_function(access: Credentials) -> None:
    """Give the backend the index's function, which the workers call and their ACL user may not load."""
    from ..result_store import ResultStore
    from ..task_index import load_function

    store = ResultStore(access.backend_url(), PROBE_TIMEOUT)
    with store.errors():
        load_function(store)


def _beat_ticking(access: Credentials, since: float) -> bool:
    from ..beat_schedule import ticking
    from ..errors import TcelError
    from ..result_store import ResultStore

    try:
        return ticking(ResultStore(access.backend_url(), PROBE_TIMEOUT), since)
    except TcelError:
        return False


def _metrics_answer(access: Credentials) -> bool:
    """Whether the exporter answers a scrape now; a refused login is raised at once."""
    try:
        probe_metrics(access, METRICS_PROBE_TIMEOUT)
    except MetricsRefusedLogin:
        raise
    except ServiceUnreachable:
        return False
    return True


def _flower_missing(access: Credentials, workers: list[str]) -> str:
    """Why Flower is not ready yet ("" when it is); a refused login is raised at once."""
    try:
        probe_flower(access, workers, PROBE_TIMEOUT)
    except FlowerRefusedLogin:
        raise
    except ServiceUnreachable as exc:
        return str(exc)
    return ""


def source_line(project: Project, log: list[str]) -> str | None:
    """The project file and line a worker's traceback ends in, such as 'tasks.py line 3' (or a module of a
    package directory the project's .dockerignore lets in)."""
    for line in reversed(log):
        # the template's working directory, and the one of the Dockerfile tcel writes for an app
        found = re.search(r'File "/(?:home/user|app)/([^"]+)", line (\d+)', line)
        for base in (project.directory, project.build_context):
            if found and (base / found.group(1)).is_file():
                return f"{base / found.group(1)} line {found.group(2)}"
    return None


def _label(node_or_service: str) -> str:
    return node_or_service.partition("@")[2] or node_or_service
