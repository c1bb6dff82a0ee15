"""Autoscaling (`tcel up --autoscale`) on plain containers: from a burst's first publish until an added worker
consumes (issue 24's target: median at most 10 s).

Writes tcel's template into a temporary directory (`tcel init`) and brings it up with `tcel up --autoscale 1:3
--autoscale-threshold 2 --autoscale-cooldown 3 --concurrency 2` (tasks.add sleeping 1 s). Each round waits until
the stack is back to one worker, publishes a burst of 30 tasks.add through a plain Celery client (the clock starts
just before the first publish), then reads tcel's index of recent tasks until a task has started on a worker that
was not running before the burst: that start is the sample. Also kept per round: when the autoscaler made the
first added worker's container (its decision; plain containers only), and when the burst's last task finished.
Takes the stack down (--volumes) at the end.

With --swarm the same on Swarm (`up --swarm`, over scripts/swarm-lab's 2 nodes, brought up unless a lab is up
and taken down again; the workers read from `tcel status --json`).

    flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/autoscale.py [--rounds 5] [--swarm]

Writes benchmarks/results/<time>-autoscale.json (every sample, the load averages, the medians).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery_cli import credentials
from celery_cli.result_store import ResultStore
from celery_cli.settings import resolve_project, setting

RESULTS = Path(__file__).parent / "results"
TCEL = [sys.executable, "-m", "celery_cli"]
BURST = 30
POLICY = ("--autoscale", "1:3", "--autoscale-threshold", "2", "--autoscale-cooldown", "3", "--concurrency", "2")
TARGET = 10.0
ENV = {**os.environ, "TCEL_ADD_DELAY": "1", "NO_COLOR": "1"}
LAB = str(Path(__file__).resolve().parent.parent / "scripts" / "swarm-lab")
SWARM = "--swarm" in sys.argv
SETTLE = 5.0  # seconds, longer than a worker's stop grace (1 s) and a look of the autoscaler
DIRECTORY = Path(tempfile.mkdtemp(prefix="tcel-bench-autoscale-")) / "scaled"


def tcel(directory: Path, project: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TCEL, *args, "--project-name", project], cwd=directory, capture_output=True, text=True, check=check, env=ENV
    )


def workers(client, project: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The running workers' host names and when each container was created (epoch seconds; 0 on Swarm)."""
    from celery_cli.stack.docker_client import docker_time

    if SWARM:
        shown = json.loads(tcel(DIRECTORY, project, "status", "--json", check=False).stdout)
        return {s["hostname"]: 0.0 for s in shown["services"] if s["service"] == "worker" and s["state"] == "running"}
    found = client.containers.list(filters={"label": [f"io.tcel.project={project}", "io.tcel.service=worker"]})
    return {c.attrs["Config"]["Hostname"]: docker_time(c.attrs["Created"]).timestamp() for c in found}


def until(what, timeout: float, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"benchmark step timed out after {timeout:.0f} s")


def one_round(client, app, store: ResultStore, project: str) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    until(lambda: len(workers(client, project)) == 1, 120, 0.5)
    if SWARM:  # a task Swarm is stopping has left `status` (desired state shutdown) before its container is gone
        time.sleep(SETTLE)
        until(lambda: len(workers(client, project)) == 1, 120, 0.5)
    before = set(workers(client, project))
    start = time.time()
    results = [app.send_task("tasks.add", (i, i)) for i in range(BURST)]
    ids = {r.id for r in results}

    def first_on_an_added_worker() -> float | None:
        started = [
            t.started
            for t in store.recent(200)
            if t.id in ids and t.started and (t.worker or "").removeprefix("celery@") not in before
        ]
        return min(started) if started else None

    consumed = until(first_on_an_added_worker, 120)
    created = None if SWARM else min(when for name, when in workers(client, project).items() if name not in before)
    for result in results:
        result.get(timeout=180)
    done = time.time()
    return {
        "consumed": round(consumed - start, 3),
        "decided": round(created - start, 3) if created else None,
        "burst_done": round(done - start, 3),
        "workers_at_end": len(workers(client, project)),
    }


def main() -> None:
    import docker
    from celery import Celery

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--swarm", action="store_true", help="on Swarm, over scripts/swarm-lab's nodes")
    arguments = parser.parse_args()
    directory = DIRECTORY
    project = f"benchautoscale{os.getpid()}"
    rounds: list[dict[str, float | None]] = []
    load_before = os.getloadavg()
    client = docker.from_env()
    lab_was_up = Path("/var/lib/tcel-swarm-lab/swarm").exists()
    try:
        if SWARM:
            if not lab_was_up:
                subprocess.run([LAB, "up", "2"], check=True, capture_output=True)
            subprocess.run([LAB, "load", setting("TCEL_REGISTRY_IMAGE")], check=True, capture_output=True)
        subprocess.run([*TCEL, "init", str(directory)], check=True, capture_output=True)
        tcel(directory, project, "up", *POLICY, *(["--swarm"] if SWARM else []))
        access = credentials.load(resolve_project(directory, project))
        assert access is not None
        app = Celery("burst", broker=access.broker_url(), backend=access.backend_url())
        store = ResultStore(access.backend_url())
        for n in range(arguments.rounds):
            rounds.append(one_round(client, app, store, project))
            print(f"round {n + 1}: {rounds[-1]}", file=sys.stderr)
    finally:
        tcel(directory, project, "down", "--volumes", check=False)
        shutil.rmtree(directory.parent, ignore_errors=True)
        if SWARM and not lab_was_up:
            subprocess.run([LAB, "down"], check=False, capture_output=True)
    keys = ("consumed", "burst_done") if SWARM else ("consumed", "decided", "burst_done")
    medians = {key: statistics.median(r[key] or 0.0 for r in rounds) for key in keys}
    report = {
        "benchmark": "autoscale",
        "command": "flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/autoscale.py "
        f"--rounds {arguments.rounds}" + (" --swarm" if SWARM else ""),
        "engine": "swarm" if SWARM else "containers",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "taken": time.strftime("%Y-%m-%dT%H%M%S"),
        "policy": " ".join(POLICY),
        "burst": f"{BURST} tasks.add sleeping 1 s",
        "rounds": rounds,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "medians": medians,
        "target_seconds": TARGET,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report['taken']}-autoscale{'-swarm' if SWARM else ''}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(medians), file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
