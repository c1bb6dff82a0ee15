"""Workflows and failures at size (issue 27): `tcel result ID --tree` of a 1,000-member chord, and
`tcel results --state FAILURE --group-by exception` over 100,000 failed results, wall clock per process as a
user runs them.

It brings up a stack of its own (the seed's tasks, in a temporary directory, on free ports), sends the chord
with `tcel workflow - --wait` (members tasks.tsum([n, 1]), body tasks.tsum), then stores 100,000 failed results
the way a worker stores them: Celery's `celery-task-meta-<id>` (status FAILURE, the exception) and the entry
tcel's worker hooks add to the failure index (tcel:failed), with 20 exception/message pairs over 50 task
names; real failures of 100,000 tasks would take minutes of worker time on this machine and end in the same
keys. The stack is removed at the end, whatever happens.

    flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/workflows.py [--rounds 20]

Writes benchmarks/results/<time>-workflows.json (every sample, the load averages, the medians).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TCEL = [sys.executable, "-m", "celery_cli"]
FAILURES = 100_000
CHORD = 1_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tcel(*args: str, env: dict[str, str], cwd: Path, input: str | None = None) -> str:
    done = subprocess.run(
        [*TCEL, *args], env=env, cwd=cwd, input=input, capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode not in (0, 9):
        raise SystemExit(f"tcel {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*TCEL, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def store_failures(backend_url: str) -> None:
    """100,000 failed results as a worker leaves them: Celery's result and tcel's failure index entry."""
    import redis

    client = redis.Redis.from_url(backend_url)
    now = time.time()
    for start in range(0, FAILURES, 5000):
        pipe = client.pipeline(transaction=False)
        entries = {}
        for n in range(start, start + 5000):
            task_id = str(uuid.uuid4())
            kind = n % 20
            exc, message = ("ValueError", "TimeoutError", "KeyError", "OSError")[kind % 4], f"failure kind {kind}"
            meta = {
                "status": "FAILURE",
                "result": {"exc_type": exc, "exc_message": [message], "exc_module": "builtins"},
                "traceback": "Traceback ...",
                "children": [],
                "date_done": None,
                "task_id": task_id,
            }
            pipe.set(f"celery-task-meta-{task_id}", json.dumps(meta), ex=86400)
            at = round(now - (FAILURES - n) * 0.01, 3)
            entry = {
                "at": at,
                "id": task_id,
                "name": f"tasks.job{n % 50}",
                "exc": exc,
                "msg": message,
                "worker": "celery@worker-1",
            }
            entries[json.dumps(entry, sort_keys=True)] = at
        pipe.zadd("tcel:failed", entries)
        pipe.execute()
    client.expire("tcel:failed", 86400)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="tcel-bench-flow-"))
    for name in ("tasks.py", "celeryconfig.py", "worker_hooks.py", "Dockerfile", ".dockerignore", "constraints.txt"):
        shutil.copy(ROOT / name, directory / name)
    project = f"benchflow{os.getpid()}"
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "TCEL_PROJECT_NAME": project,
        "TCEL_BROKER_PORT": str(free_port()),
        "TCEL_BACKEND_PORT": str(free_port()),
    }
    try:
        tcel("up", env=env, cwd=directory)
        document = {"chord": [f"tasks.tsum([{n}, 1])" for n in range(CHORD)], "then": "tasks.tsum"}
        ended = json.loads(
            tcel(
                "workflow",
                "-",
                "--wait",
                "--timeout",
                "600",
                "--json",
                env=env,
                cwd=directory,
                input=json.dumps(document),
            )
        )
        assert ended["state"] == "SUCCESS" and ended["done"] == CHORD + 1, ended
        backend_url = json.loads(tcel("env", "--json", env=env, cwd=directory))["CELERY_RESULT_BACKEND_URL"]
        store_failures(backend_url)
        commands = {
            "result --tree (1,000-member chord)": ["result", ended["id"], "--tree"],
            "result --tree --json (1,000-member chord)": ["result", ended["id"], "--tree", "--json"],
            "results --state FAILURE --group-by exception (100,000 failures)": [
                "results",
                "--state",
                "FAILURE",
                "--group-by",
                "exception",
            ],
        }
        for argv in commands.values():  # warm-up: byte-compile, fill the page cache
            timed(argv, env, directory)
        load_before = os.getloadavg()
        samples: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.rounds):
            for label, argv in commands.items():
                samples[label].append(round(timed(argv, env, directory), 5))
        load_after = os.getloadavg()
    finally:
        subprocess.run([*TCEL, "down", "--volumes"], env=env, cwd=directory, capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)
    medians = {label: statistics.median(s) for label, s in samples.items()}
    taken = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
    record = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "taken": taken,
        "command": " ".join(["benchmarks/workflows.py", *sys.argv[1:]]),
        "rounds": args.rounds,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "medians": medians,
        "samples": samples,
    }
    out = Path(__file__).resolve().parent / "results" / f"{taken}-workflows.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    for label, median in medians.items():
        print(f"{label:66} median {median * 1000:7.1f} ms  min {min(samples[label]) * 1000:7.1f} ms")
    print(f"samples: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
