"""tcel's Prometheus exporter (`tcel up --metrics`): the stack's queues, workers and recent tasks, read on each
scrape and served behind a basic-auth login. It runs in its own image (stack/metrics_image/, with the few tcel
modules it imports) as `python -m celery_cli.exporter`; its secrets are files under /run/secrets that the
environment names (CELERY_BROKER_URL_FILE, CELERY_RESULT_BACKEND_URL_FILE, TCEL_METRICS_BASIC_AUTH_FILE).

A reading of the stack costs one broadcast of Celery's `stats` (bounded by INSPECT_TIMEOUT), three inspects
addressed to the workers that answered, one passive queue declare per queue, and one Redis round trip for the
newest RECENT tasks of tcel's index: about half a second, whatever the number of stored results. A thread reads
the stack every READ_INTERVAL seconds and a scrape serves the newest reading (its age is exported): a scrape is
answered in milliseconds and never waits on the workers' replies, and the stack is read at the same rate however
many Prometheus servers scrape it.
"""

from __future__ import annotations

import base64
import hmac
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .credentials import Credentials
from .errors import TcelError
from .names import METRICS_PORT, QUEUE
from .queues import QueueInfo, queues
from .remote_control import Control, pool_size
from .result_store import ResultStore
from .task_record import TaskRecord

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from prometheus_client.metrics_core import Metric

INSPECT_TIMEOUT = 0.5
RECENT = 1000  # the newest tasks of the index counted by name and state
WORKER_FORGET = 3600.0  # a worker that stopped answering is reported down for this long, then dropped
RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
LOGIN_VARIABLE = "TCEL_METRICS_BASIC_AUTH"
READ_INTERVAL = 2.0  # seconds between two readings of the stack (TCEL_METRICS_READ_INTERVAL)
FIRST_READING_WAIT = 10.0  # a scrape before the first reading waits this long for it


@dataclass
class Reading:
    """What one scrape read; a source that failed is missing from `up`."""

    queues: list[QueueInfo] = field(default_factory=list)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # answering node -> its numbers
    silent: list[str] = field(default_factory=list)  # seen before, not answering now
    tasks: list[TaskRecord] = field(default_factory=list)
    up: dict[str, bool] = field(default_factory=dict)  # broker, workers, backend
    seconds: float = 0.0  # how long the reading took
    at: float = 0.0  # when it ended (time.time())


def broker_access(broker_url: str) -> Credentials:
    """Credentials that reach the broker of an amqp:// URL (what queues.queues takes); no backend in them."""
    parts = urlsplit(broker_url)
    # amqps://: verified against the stack's authority, whose certificate TCEL_CA_FILE names
    authority = os.environ.get("TCEL_CA_FILE", "") if parts.scheme == "amqps" else ""
    return Credentials(
        parts.username or "guest",
        parts.password or "",
        "",
        bind=parts.hostname or "",
        broker_port=parts.port or 5672,
        ca_file=authority,
    )


class StackReader:
    """Reads the stack on each scrape; remembers the workers it saw, to report one that stops answering."""

    def __init__(self, broker_url: str, backend_url: str) -> None:
        self.broker_url = broker_url
        self.backend_url = backend_url
        self.seen: dict[str, float] = {}  # node name -> when it last answered

    def read(self) -> Reading:
        from concurrent.futures import ThreadPoolExecutor

        started = time.monotonic()
        reading = Reading()
        with ThreadPoolExecutor(max_workers=2) as pool:
            workers = pool.submit(self._workers)
            tasks = pool.submit(ResultStore(self.backend_url, INSPECT_TIMEOUT * 2).recent, RECENT)
            consumed = _part(reading, "workers", workers.result, ({}, set[str]()))
            reading.tasks = _part(reading, "backend", tasks.result, [])
        reading.workers, queue_names = consumed
        queue_names |= {QUEUE, *(t.queue for t in reading.tasks if t.queue)}
        reading.queues = _part(
            reading, "broker", lambda: queues(broker_access(self.broker_url), sorted(queue_names), INSPECT_TIMEOUT), []
        )
        held: Counter[str] = Counter()
        for numbers in reading.workers.values():
            held.update(numbers["held"])
        for queue in reading.queues:
            queue.unacked = held.get(queue.name, 0)
        if reading.up["workers"]:  # when the broadcast itself failed, nobody is known to be down
            now = time.time()
            self.seen.update(dict.fromkeys(reading.workers, now))
            self.seen = {name: when for name, when in self.seen.items() if now - when < WORKER_FORGET}
            reading.silent = sorted(set(self.seen) - set(reading.workers))
        reading.seconds = time.monotonic() - started
        reading.at = time.time()
        return reading

    def _workers(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Each answering worker's pool, active tasks, processed count and held messages by queue; the queues
        they consume."""
        with Control(self.broker_url) as control:
            stats = control.inspect("stats", None, INSPECT_TIMEOUT)
            answering = sorted(stats)
            active = control.inspect("active", answering, INSPECT_TIMEOUT) if answering else {}
            reserved = control.inspect("reserved", answering, INSPECT_TIMEOUT) if answering else {}
            consumed = control.inspect("active_queues", answering, INSPECT_TIMEOUT) if answering else {}
        workers = {
            name: {
                "pool": pool_size(stats[name]),
                "active": len(active.get(name) or []),
                "processed": sum((stats[name].get("total") or {}).values()),
                "maxrss": (stats[name].get("rusage") or {}).get("maxrss"),  # KiB, the main process's peak
                "held": Counter(
                    (task.get("delivery_info") or {}).get("routing_key") or QUEUE
                    for task in (active.get(name) or []) + (reserved.get(name) or [])
                ),
            }
            for name in answering
        }
        return workers, {queue["name"] for found in consumed.values() for queue in found or []}


def _part(reading: Reading, source: str, read: Callable[[], Any], default: Any) -> Any:
    try:
        value = read()
    except TcelError:
        reading.up[source] = False
        return default
    reading.up[source] = True
    return value


def families(reading: Reading) -> Iterator[Metric]:
    """The Prometheus metric families of one reading."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    q, w = reading.queues, reading.workers
    gauges: list[tuple[str, str, str, list[tuple[str, float]]]] = [
        ("tcel_exporter_source_up", "1 when the exporter read the source in its newest reading", "source",
         [(source, float(ok)) for source, ok in sorted(reading.up.items())]),
        ("tcel_queue_messages_ready", "Messages waiting in the queue", "queue", [(x.name, x.ready) for x in q]),
        ("tcel_queue_messages_unacknowledged", "Messages the workers hold, running or reserved", "queue",
         [(x.name, x.unacked or 0) for x in q]),
        ("tcel_queue_consumers", "Consumers of the queue", "queue", [(x.name, x.consumers or 0) for x in q]),
        ("tcel_worker_up", "1 when the worker answered this scrape, 0 when it answered before and not now", "worker",
         [*((n, 1.0) for n in sorted(w)), *((n, 0.0) for n in reading.silent)]),
        ("tcel_worker_pool_processes", "Processes in the worker's pool", "worker",
         [(n, float(w[n]["pool"] or 0)) for n in sorted(w)]),
        ("tcel_worker_active_tasks", "Tasks the worker runs now", "worker", [(n, w[n]["active"]) for n in sorted(w)]),
        ("tcel_worker_peak_memory_bytes", "Peak resident memory of the worker's main process (its rusage maxrss)",
         "worker", [(n, w[n]["maxrss"] * 1024.0) for n in sorted(w) if w[n].get("maxrss") is not None]),
    ]  # fmt: skip
    for name, text, label, samples in gauges:
        family = GaugeMetricFamily(name, text, labels=[label])
        for value_of, value in samples:
            family.add_metric([value_of], value)
        yield family
    yield GaugeMetricFamily(
        "tcel_exporter_read_seconds", "How long the newest reading of the stack took", value=reading.seconds
    )
    yield GaugeMetricFamily(
        "tcel_exporter_reading_age_seconds",
        "Seconds since the newest reading of the stack ended",
        value=max(0.0, time.time() - reading.at) if reading.at else 0.0,
    )
    processed = CounterMetricFamily(
        "tcel_worker_processed", "Tasks the worker received since it started", labels=["worker"]
    )
    for n in sorted(w):
        processed.add_metric([n], w[n]["processed"])
    yield processed
    yield from task_families(reading.tasks)


def task_families(tasks: list[TaskRecord]) -> Iterator[Metric]:
    """Counts by task name and state, and a runtime histogram by name, over the newest RECENT indexed tasks."""
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

    counts = Counter((t.name or "?", t.shown_state) for t in tasks)
    recent = GaugeMetricFamily(
        "tcel_recent_tasks",
        f"Tasks by name and state among the newest {RECENT} tcel's index holds",
        labels=["name", "state"],
    )
    for (name, state), count in sorted(counts.items()):
        recent.add_metric([name, state], count)
    yield recent
    runtimes: dict[str, list[float]] = {}
    for t in tasks:
        if t.runtime is not None:
            runtimes.setdefault(t.name or "?", []).append(t.runtime)
    histogram = HistogramMetricFamily(
        "tcel_recent_task_runtime_seconds", f"Runtime of the finished tasks among the newest {RECENT}", labels=["name"]
    )
    for name, values in sorted(runtimes.items()):
        buckets = [(str(bound), float(sum(v <= bound for v in values))) for bound in RUNTIME_BUCKETS]
        histogram.add_metric([name], [*buckets, ("+Inf", float(len(values)))], sum(values))
    yield histogram
    yield from wait_families(tasks)


def wait_families(tasks: list[TaskRecord], now: float | None = None) -> Iterator[Metric]:
    """How long tasks waited in their queue (sent until started), as a histogram by queue over the newest RECENT
    tasks that started, and the age of the oldest task still queued among them, by queue."""
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

    now = time.time() if now is None else now
    waits: dict[str, list[float]] = {}
    oldest: dict[str, float] = {}
    for t in tasks:
        if t.sent is None:
            continue
        queue = t.queue or QUEUE
        if t.started is not None:
            waits.setdefault(queue, []).append(max(0.0, t.started - t.sent))
        elif t.queued:
            oldest[queue] = max(oldest.get(queue, 0.0), now - t.sent)
    histogram = HistogramMetricFamily(
        "tcel_recent_task_queue_wait_seconds",
        f"Time from sent to started of the tasks that started among the newest {RECENT}",
        labels=["queue"],
    )
    for queue, values in sorted(waits.items()):
        buckets = [(str(bound), float(sum(v <= bound for v in values))) for bound in RUNTIME_BUCKETS]
        histogram.add_metric([queue], [*buckets, ("+Inf", float(len(values)))], sum(values))
    yield histogram
    age = GaugeMetricFamily(
        "tcel_recent_oldest_queued_seconds",
        f"Age of the oldest task sent and not started yet among the newest {RECENT}",
        labels=["queue"],
    )
    for queue, seconds in sorted(oldest.items()):
        age.add_metric([queue], seconds)
    yield age


class Collector:
    """prometheus-client's custom collector: reads the stack in a thread of its own every `interval` seconds;
    a scrape renders the newest reading."""

    def __init__(self, reader: StackReader, interval: float = READ_INTERVAL) -> None:
        self.reader = reader
        self.interval = interval
        self.newest: Reading | None = None
        self.first = threading.Event()

    def start(self) -> Collector:
        threading.Thread(target=self._read_forever, name="reader", daemon=True).start()
        return self

    def _read_forever(self) -> None:
        while True:
            try:
                self.newest = self.reader.read()  # one reference replaced whole: no lock needed
                self.first.set()
            except Exception:  # a bug in one reading: said in the log, and the next one tried
                traceback.print_exc()
            time.sleep(self.interval)

    def collect(self) -> Iterator[Metric]:
        self.first.wait(FIRST_READING_WAIT)
        newest = self.newest
        if newest is None:  # not read yet: every source unknown rather than a scrape that hangs
            newest = Reading(up={"broker": False, "workers": False, "backend": False})
        return families(newest)


def guarded(app: WSGIApplication, login: str) -> WSGIApplication:
    """`app` behind HTTP basic auth with the login "user:password"."""
    expected = "Basic " + base64.b64encode(login.encode()).decode()

    def guard(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if hmac.compare_digest(environ.get("HTTP_AUTHORIZATION", "").encode(), expected.encode()):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="tcel metrics"')])
        return [b"login required\n"]

    return guard


def secret(variable: str) -> str:
    """The content of the file VARIABLE_FILE names (Docker secrets and tcel's files under /run/secrets)."""
    path = os.environ.get(f"{variable}_FILE")
    if not path:
        raise SystemExit(f"tcel exporter: {variable}_FILE is not set")
    with open(path) as found:
        return found.read().strip()


def serve(port: int = METRICS_PORT, host: str = "") -> None:
    """Serve /metrics on `host` (every interface of the container by default), behind the login, until stopped."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes are not logged: one line every few seconds says nothing."""

    registry = CollectorRegistry(auto_describe=False)
    reader = StackReader(secret("CELERY_BROKER_URL"), secret("CELERY_RESULT_BACKEND_URL"))
    interval = float(os.environ.get("TCEL_METRICS_READ_INTERVAL", READ_INTERVAL))
    registry.register(Collector(reader, interval).start())
    app = guarded(make_wsgi_app(registry), secret(LOGIN_VARIABLE))
    server = make_server(host, port, app, Server, QuietHandler)
    if os.environ.get("TCEL_TLS_CERT_FILE"):  # a stack that serves TLS: HTTPS only
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["TCEL_TLS_CERT_FILE"], os.environ["TCEL_TLS_KEY_FILE"])
        # the handshake in the request's thread (on its first read), so a client that sends nothing holds no other
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    # as PID 1 of its container, a process gets no default action for SIGTERM: `docker stop` would wait 10 s
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"tcel exporter serving on port {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(os.environ.get("TCEL_METRICS_LISTEN_PORT", METRICS_PORT)), os.environ.get("TCEL_METRICS_LISTEN_HOST", ""))
