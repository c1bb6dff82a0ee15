"""What TLS costs `tcel bench`: sent/s (and completed/s) of the same project on two plain-container stacks side by
side, one on loopback (plain AMQP and Redis) and one with `--bind 0.0.0.0` (AMQPS and Redis over TLS from the
stack's authority, verified by the CLI), in an order that alternates each round, after an untimed warm-up bench on
each. Issue 25's target: sent/s over TLS at least 0.85 x without. Both stacks run at once (2 workers each by
default; the idle one's workers only wait on their broker), each on ports of its own; `tcel bench` reaches both
through 127.0.0.1, which the TLS stack's certificates name. A failed run stops the benchmark. Takes both stacks
down (--volumes) at the end.

    flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/tls.py [--rounds 7] [--tasks 2000]
    flock /tmp/tcel-engine.lock scripts/bench --only tls

Writes benchmarks/results/<time>-tls.json (every run's numbers, its load average, the medians).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TCEL = str(Path(sys.executable).parent / "tcel")
RESULTS = REPO / "benchmarks" / "results"
SIDES = ("plain", "tls")

sys.path.insert(0, str(REPO))
from celery_cli.stack.ports import free_port  # noqa: E402


class Stack:
    """A throw-away tcel project on plain containers: `plain` on loopback, `tls` with --bind 0.0.0.0."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.directory = Path(tempfile.mkdtemp(prefix=f"tcel-bench-tls-{side}-"))
        self.name = f"tcelbenchtls{side}{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "TCEL_PROJECT_NAME": self.name,
            "TCEL_BROKER_PORT": str(free_port("127.0.0.1")),
            "TCEL_BACKEND_PORT": str(free_port("127.0.0.1")),
        }

    def tcel(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([TCEL, *args], cwd=self.directory, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise SystemExit(f"benchmark step failed ({self.side}): tcel {' '.join(args)}\n{done.stderr[-2000:]}")
        return done

    def up(self, workers: int) -> None:
        bind = ["--bind", "0.0.0.0"] if self.side == "tls" else []
        self.tcel("up", "--workers", str(workers), *bind)
        scheme = self.tcel("env", "--json").stdout
        wanted = "amqps://" if self.side == "tls" else "amqp://"
        if f'"{wanted}' not in scheme:
            raise SystemExit(f"the {self.side} stack's broker URL is not {wanted}")

    def bench(self, tasks: int) -> dict:
        result = json.loads(self.tcel("bench", "-n", str(tasks), "--json").stdout)
        return {
            "sent_per_second": result["sent_per_second"],
            "completed_per_second": result["completed_per_second"],
            "load_average": os.getloadavg(),
        }

    def down(self) -> None:
        from celery_cli.credentials import state_file
        from celery_cli.settings import resolve_project

        self.tcel("down", "--volumes", check=False)
        project = resolve_project(self.directory, self.name)
        state_file(project).unlink(missing_ok=True)
        (project.state_dir / f"{project.name}.lock").unlink(missing_ok=True)
        shutil.rmtree(project.state_dir / f"{project.name}-ca", ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def measure(rounds: int, tasks: int, workers: int = 2) -> dict:
    """Bring both stacks up, bench each `rounds` times alternating which goes first, write the JSON."""
    stacks = {side: Stack(side) for side in SIDES}
    samples: dict[str, list[dict]] = {side: [] for side in SIDES}
    try:
        for stack in stacks.values():
            stack.up(workers)
        for stack in stacks.values():
            stack.bench(tasks)  # warm-up: connections, the workers' first tasks
        for n in range(rounds):
            order = SIDES if n % 2 == 0 else SIDES[::-1]
            for side in order:
                samples[side].append(stacks[side].bench(tasks))
                print(f"  round {n + 1} {side}: {samples[side][-1]}", file=sys.stderr)
    finally:
        for stack in stacks.values():
            stack.down()
    medians = {
        side: {key: statistics.median(s[key] for s in runs) for key in ("sent_per_second", "completed_per_second")}
        for side, runs in samples.items()
    }
    ratio = medians["tls"]["sent_per_second"] / medians["plain"]["sent_per_second"]
    from run import machine  # benchmarks/run.py, beside this file

    taken = time.strftime("%Y-%m-%dT%H%M%S")
    document = {
        "benchmark": "tls",
        "command": f"flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/tls.py --rounds {rounds} --tasks {tasks}",
        "machine": machine(),
        "taken": taken,
        "tasks": tasks,
        "workers": workers,
        "rounds": rounds,
        "medians": medians,
        "sent_ratio_tls_to_plain": round(ratio, 3),
        "target": 0.85,
        "met": ratio >= 0.85,
        "samples": samples,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{taken}-tls.json").write_text(json.dumps(document, indent=1) + "\n")
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    document = measure(arguments.rounds, arguments.tasks, arguments.workers)
    for side, median in document["medians"].items():
        print(f"{side:<6} sent/s {median['sent_per_second']:.0f}, completed/s {median['completed_per_second']:.0f}")
    print(f"sent/s over TLS / without: {document['sent_ratio_tls_to_plain']} (target >= 0.85, met: {document['met']})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
