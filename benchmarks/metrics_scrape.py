"""A scrape of tcel's exporter (`tcel up --metrics`) with 100,000 stored results and 10 queues (issue 24's target:
answered in at most 100 ms).

Writes tcel's template into a temporary directory (`tcel init`), brings it up with `tcel up --metrics`, stores
100,000 results with `tcel bench -n 100000`, leaves 3 messages in each of 10 queues no worker consumes, waits until
a scrape shows them, then times, round by round and alternating: a scrape of /metrics with its login (a fresh HTTP
connection each, as Prometheus makes when keep-alive is off), and, as the anchor, one reading of the stack as the
exporter makes it in its thread (`StackReader.read()`, run on the host: what a scrape cost when the exporter read
the stack on each scrape). Takes the stack down (--volumes) and removes its images at the end.

    flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/metrics_scrape.py [--rounds 50] [--results 100000]

Writes benchmarks/results/<time>-metrics_scrape.json (every sample, the load averages, the medians).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery_cli.exporter import StackReader

RESULTS = Path(__file__).parent / "results"
TCEL = [sys.executable, "-m", "celery_cli"]
QUEUES = [f"idle-{n}" for n in range(10)]
PER_QUEUE = 3


def tcel(directory: Path, project: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TCEL, *args, "--project-name", project], cwd=directory, capture_output=True, text=True, check=check
    )


def scrape(url: str, login: str) -> str:
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return round(time.perf_counter() - start, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--results", type=int, default=100_000)
    arguments = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="tcel-bench-metrics-")) / "scraped"
    project = f"benchmetrics{os.getpid()}"
    samples: dict[str, list[float]] = {"scrape": [], "one reading (the anchor)": []}
    stored = 0
    try:
        subprocess.run([*TCEL, "init", str(directory)], check=True, capture_output=True)
        tcel(directory, project, "up", "--metrics", "--json")
        bench = json.loads(tcel(directory, project, "bench", "-n", str(arguments.results), "--json").stdout)
        for queue in QUEUES:
            for _ in range(PER_QUEUE):
                tcel(directory, project, "call", "tasks.add", "1", "2", "--queue", queue, "--quiet")
        env = json.loads(tcel(directory, project, "env", "--json").stdout)
        shown = json.loads(tcel(directory, project, "metrics", "--json", "--show-password").stdout)
        url, login = shown["url"], f"{shown['user']}:{shown['password']}"
        deadline = time.monotonic() + 60
        wanted = [f'tcel_queue_messages_ready{{queue="{q}"}} {float(PER_QUEUE)}' for q in QUEUES]
        while not all(line in scrape(url, login) for line in wanted):
            assert time.monotonic() < deadline, "the exporter did not show the 10 queues within 60 s"
            time.sleep(0.5)
        stored = _stored_results(env)
        reader = StackReader(env["CELERY_BROKER_URL"], env["CELERY_RESULT_BACKEND_URL"])
        actions = {"scrape": lambda: scrape(url, login), "one reading (the anchor)": reader.read}
        for action in actions.values():  # warm-up
            action()
        load_before = os.getloadavg()
        for round_ in range(arguments.rounds):
            order = list(actions.items()) if round_ % 2 == 0 else list(actions.items())[::-1]
            for name, action in order:
                samples[name].append(timed(action))
    finally:
        tcel(directory, project, "down", "--volumes", check=False)
        shutil.rmtree(directory.parent, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    taken = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
    record = {
        "benchmark": "metrics_scrape",
        "command": "flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/metrics_scrape.py --rounds "
        f"{arguments.rounds} --results {arguments.results}",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "taken": taken,
        "stored_results": stored,
        "bench": {k: bench.get(k) for k in ("sent_per_second", "completed_per_second", "count") if k in bench},
        "queues": len(QUEUES),
        "rounds": arguments.rounds,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "medians": medians,
        "p95": {name: sorted(values)[int(len(values) * 0.95) - 1] for name, values in samples.items()},
        "samples": samples,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{taken}-metrics_scrape.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{stored} results stored, {len(QUEUES)} idle queues")
    for name, median in medians.items():
        print(f"{name:<26} median {median * 1000:.1f} ms over {arguments.rounds} rounds")
    print(f"samples: {path}")


def _stored_results(env: dict[str, str]) -> int:
    """How many of Celery's result keys the backend holds (a SCAN: once, outside the timed part)."""
    import redis

    client = redis.Redis.from_url(env["CELERY_RESULT_BACKEND_URL"])
    return sum(1 for _ in client.scan_iter("celery-task-meta-*", count=10_000))


if __name__ == "__main__":
    main()
