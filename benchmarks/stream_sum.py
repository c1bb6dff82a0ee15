"""The streamed tsum at scale: `seq 1 N | tcel tsum - --wait` on a stack of its own, with 1 and with 2 worker
containers, alternated round by round (workers at the image's concurrency of 10 processes, and again at 1).

Per run: the wall time, the client's peak RSS (its own rusage, from wait4), the CPU seconds of the client and
of each container (cgroup v1 cpuacct, where the engine keeps it), and the load average before it. After each
change of workers an untimed run of 300,000 numbers fills the registered-names cache and wakes the workers.
A run whose sum is wrong or that fails stops the benchmark. A step of benchmarks/run.py, which records every
sample in its `<time>-stream_sum.json` as it does for its other steps:

    scripts/bench --only stream_sum --rounds 5 [--numbers 10000000]
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TCEL = str(Path(sys.executable).parent / "tcel")
RSS_TARGET_MB = 100
RATIO_TARGET = 0.6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loadavg() -> list[float]:
    return [float(part) for part in Path("/proc/loadavg").read_text().split()[:3]]


class Stack:
    """A throw-away tcel project and its stack."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tcel-bench-stream-"))
        self.name = f"tcelbenchstream{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "TCEL_PROJECT_NAME": self.name,
            "TCEL_BROKER_PORT": str(free_port()),
            "TCEL_BACKEND_PORT": str(free_port()),
        }

    def tcel(self, *args: str) -> str:
        done = subprocess.run([TCEL, *args], cwd=self.directory, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"benchmark step failed: tcel {' '.join(args)}\n{done.stderr[-2000:]}")
        return done.stdout

    def containers(self) -> list[str]:
        out = subprocess.run(
            ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=io.tcel.project={self.name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each running container has used, by name (empty where the engine keeps no cgroup v1)."""
        used = {}
        for container in self.containers():
            path = Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage")
            if path.exists():
                name = (
                    subprocess.run(["docker", "inspect", "-f", "{{.Name}}", container], capture_output=True, text=True)
                    .stdout.strip()
                    .lstrip("/")
                    .removeprefix(f"tcel-{self.name}-")
                )
                used[name] = int(path.read_text()) / 1e9
        return used

    def down(self) -> None:
        """Remove the stack, its volumes, and the throw-away project's state (credentials, lock)."""
        sys.path.insert(0, str(REPO))
        from celery_cli.credentials import state_file
        from celery_cli.settings import resolve_project

        subprocess.run([TCEL, "down", "--volumes"], cwd=self.directory, env=self.env, capture_output=True)
        project = resolve_project(self.directory, self.name)
        state_file(project).unlink(missing_ok=True)
        (project.state_dir / f"{project.name}.lock").unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def streamed_sum(stack: Stack, numbers: int) -> dict:
    """One timed `seq 1 N | tcel tsum - --wait --json`."""
    before_cpu = stack.cpu_seconds()
    load = loadavg()
    started = time.perf_counter()
    seq = subprocess.Popen(["seq", "1", str(numbers)], stdout=subprocess.PIPE)
    client = subprocess.Popen(
        [TCEL, "tsum", "-", "--wait", "--json"],
        stdin=seq.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=stack.directory,
        env=stack.env,
    )
    seq.stdout.close()
    out, err = client.stdout.read(), client.stderr.read()
    _, status, usage = os.wait4(client.pid, 0)  # the client's own rusage: its peak RSS and CPU time
    wall = time.perf_counter() - started
    client.returncode = os.waitstatus_to_exitcode(status)
    seq.wait()
    if client.returncode != 0:
        raise SystemExit(f"tcel tsum - failed (exit {client.returncode}): {err.decode()[-2000:]}")
    record = json.loads(out)
    if record["result"] != numbers * (numbers + 1) // 2:
        raise SystemExit(f"wrong sum: {record['result']}")
    after_cpu = stack.cpu_seconds()
    return {
        "seconds": round(wall, 3),
        "client_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "client_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "container_cpu_seconds": {name: round(after_cpu[name] - before_cpu.get(name, 0.0), 2) for name in after_cpu},
        "chunks": (record.get("job") or {}).get("chunks", 1),  # an input of one chunk is one plain tsum
        "loadavg_before": load,
    }


def compare(document: dict, numbers: int, rounds: int, concurrencies: list[int]) -> dict:
    """Fill `document` with every sample, by concurrency and worker count, then medians, the ratio and the
    targets; filled as the runs come, so a run that fails midway leaves the samples taken before it
    (benchmarks/run.py records them with the command, the machine and the load averages)."""
    stack = Stack()
    document.update({"numbers": numbers, "rounds": rounds, "configurations": []})
    try:
        for concurrency in concurrencies:
            samples: dict[int, list[dict]] = {1: [], 2: []}
            configuration = {"concurrency": concurrency, "samples": {f"{w}_workers": samples[w] for w in samples}}
            document["configurations"].append(configuration)
            for n in range(rounds):
                for workers in (1, 2) if n % 2 == 0 else (2, 1):
                    stack.tcel("up", "--workers", str(workers), "--concurrency", str(concurrency))
                    streamed_sum(stack, min(numbers, 300_000))  # untimed: fills the name cache, wakes the workers
                    sample = streamed_sum(stack, numbers)
                    samples[workers].append(sample)
                    print(
                        f"  concurrency {concurrency}, {workers} worker(s): {sample['seconds']:.2f}s, "
                        f"client {sample['client_peak_rss_mb']} MB peak, load {sample['loadavg_before'][0]}",
                        file=sys.stderr,
                    )
            medians = {w: statistics.median(s["seconds"] for s in samples[w]) for w in samples}
            configuration.update(
                {
                    "median_seconds": {f"{w}_workers": round(medians[w], 3) for w in medians},
                    "ratio_2_to_1": round(medians[2] / medians[1], 3),
                    "client_peak_rss_mb_max": max(s["client_peak_rss_mb"] for w in samples for s in samples[w]),
                }
            )
        small = streamed_sum(stack, numbers // 10)  # the same client's peak at a tenth of the input: it stays flat
        document["client_peak_rss_mb_at_a_tenth"] = {"numbers": numbers // 10, "mb": small["client_peak_rss_mb"]}
    finally:
        stack.down()
    peak = max(c["client_peak_rss_mb_max"] for c in document["configurations"])
    document["targets"] = {
        "client_peak_rss_mb": {"target": RSS_TARGET_MB, "seen": peak, "met": peak <= RSS_TARGET_MB},
        "ratio_2_to_1": {
            "target": RATIO_TARGET,
            "seen": {c["concurrency"]: c["ratio_2_to_1"] for c in document["configurations"]},
            "met": {c["concurrency"]: c["ratio_2_to_1"] <= RATIO_TARGET for c in document["configurations"]},
        },
    }
    return document
