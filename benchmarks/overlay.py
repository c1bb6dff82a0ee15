"""The overlay network's cost on Swarm: `tcel bench` against the same workers (2 by default) placed on the manager
beside the broker and backend (no VXLAN on the way), on one lab node, and spread over two lab nodes (every message
crosses the overlay network's VXLAN), in an order that rotates each round. On one machine the lab's nodes add no
CPU: this shows the overlay's overhead, never a speed-up.

Needs root and the Docker engine to itself (`flock -x /tmp/tcel-engine.lock`): it brings scripts/swarm-lab up with
2 nodes unless a lab is up (and then takes it down again), on a stack of its own (`tcel up --swarm`). Between
placements the worker service's placement constraints change (a rolling update); each timed run waits until
`tcel status` is healthy with every worker where it belongs, and follows an untimed warm-up bench. A failed run
stops the benchmark. Writes benchmarks/results/<time>-overlay.json (every sample, its load average, the medians).

    flock -x /tmp/tcel-engine.lock .venv/bin/python benchmarks/overlay.py [--rounds 3] [--tasks 1000] [--workers 2]
    flock -x /tmp/tcel-engine.lock scripts/bench --only overlay
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TCEL = str(Path(sys.executable).parent / "tcel")
LAB = str(REPO / "scripts" / "swarm-lab")
LAB_STATE = Path("/var/lib/tcel-swarm-lab/swarm")
RESULTS = REPO / "benchmarks" / "results"
PLACEMENTS = ("manager", "one_lab_node", "two_lab_nodes")
PLACED_TIMEOUT = 180
Placed = Callable[[list[str]], bool]  # given the running workers' nodes, whether they are where asked

sys.path.insert(0, str(REPO))
from run import machine  # noqa: E402  (benchmarks/run.py, beside this file)

from celery_cli.stack.ports import free_port  # noqa: E402


def lab(*args: str) -> str:
    done = subprocess.run([LAB, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed: scripts/swarm-lab {' '.join(args)}\n{done.stderr[-2000:]}")
    return done.stdout


class SwarmStack:
    """A throw-away tcel project on Swarm, on the lab."""

    def __init__(self) -> None:
        import docker

        self.client = docker.from_env()
        self.directory = Path(tempfile.mkdtemp(prefix="tcel-bench-overlay-"))
        self.name = f"tcelbenchoverlay{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "TCEL_PROJECT_NAME": self.name,
            "TCEL_BROKER_PORT": str(free_port("127.0.0.1")),
            "TCEL_BACKEND_PORT": str(free_port("127.0.0.1")),
        }

    def tcel(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([TCEL, *args], cwd=self.directory, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise SystemExit(f"benchmark step failed: tcel {' '.join(args)}\n{done.stderr[-2000:]}")
        return done

    def nodes(self) -> tuple[str, list[str]]:
        """The manager's host name, and the lab nodes' (the swarm's workers)."""
        manager, others = "", []
        for node in self.client.nodes.list():
            name = node.attrs["Description"]["Hostname"]
            if node.attrs["Spec"]["Role"] == "manager":
                manager = name
            else:
                others.append(name)
        return manager, sorted(others)

    def place(self, placement: dict) -> None:
        from celery_cli.stack import swarm_engine

        # forced: Swarm leaves a worker that still satisfies the new placement where it is
        swarm_engine.update(self.client.services.get(f"tcel-{self.name}-worker"), placement=placement, force=True)

    def worker_nodes(self) -> list[str] | None:
        """The nodes of the running workers once `tcel status` is healthy (every worker answering), else None."""
        shown = self.tcel("status", "--json", check=False)
        if shown.returncode != 0:
            return None
        return sorted(
            s["node"]
            for s in json.loads(shown.stdout)["services"]
            if s["service"] == "worker" and s["state"] == "running"
        )

    def down(self) -> None:
        """Remove the stack, its volumes, and the throw-away project's state (credentials, lock)."""
        from celery_cli.credentials import state_file
        from celery_cli.settings import resolve_project

        self.tcel("down", "--volumes", check=False)
        project = resolve_project(self.directory, self.name)
        state_file(project).unlink(missing_ok=True)
        (project.state_dir / f"{project.name}.lock").unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.client.close()


def placements(manager: str, lab_nodes: list[str], workers: int) -> dict[str, tuple[dict, Placed]]:
    """Placement name -> (the worker service's placement, a check of the nodes its running workers are on)."""
    on = [f"node.hostname=={name}" for name in (manager, lab_nodes[0])]
    return {
        "manager": ({"Constraints": on[:1], "MaxReplicas": 0}, lambda nodes: nodes == [manager] * workers),
        "one_lab_node": ({"Constraints": on[1:], "MaxReplicas": 0}, lambda nodes: nodes == [lab_nodes[0]] * workers),
        # half on each of the two lab nodes (no more than that many on one)
        "two_lab_nodes": (
            {"Constraints": [f"node.hostname!={manager}"], "MaxReplicas": (workers + 1) // 2},
            lambda nodes: len(nodes) == workers and sorted(set(nodes)) == lab_nodes[:2],
        ),
    }


def bench(stack: SwarmStack, tasks: int) -> dict:
    load = os.getloadavg()
    result = json.loads(stack.tcel("bench", "-n", str(tasks), "--timeout", "300", "--json").stdout)
    if result["failed"]:
        raise SystemExit(f"benchmark run failed: {result['failed']} of {tasks} tasks failed")
    return {
        **{key: result[key] for key in ("completed_per_second", "sent_per_second", "latency_p50", "latency_p95")},
        "load_average_before": load,
    }


def compare(rounds: int, tasks: int, workers: int) -> dict:
    """Every sample by placement, the medians, and each placement's completed/s against the manager's."""
    if os.geteuid() != 0:
        raise SystemExit("benchmarks/overlay.py needs root (scripts/swarm-lab starts Docker engines)")
    reused = LAB_STATE.exists()
    if not reused:
        lab("up", "2")
    stack = None
    try:
        from celery_cli.settings import setting

        lab("load", setting("TCEL_REGISTRY_IMAGE"))  # every node runs a registry mirror from it
        stack = SwarmStack()
        manager, lab_nodes = stack.nodes()
        if len(lab_nodes) < 2:
            raise SystemExit(f"the swarm has {len(lab_nodes)} worker node(s); the comparison needs 2")
        stack.tcel("up", "--swarm", "--workers", str(workers))
        where = placements(manager, lab_nodes, workers)
        samples: dict[str, list[dict]] = {name: [] for name in PLACEMENTS}
        for n in range(rounds):
            for name in PLACEMENTS[n % 3 :] + PLACEMENTS[: n % 3]:
                placement, placed = where[name]
                stack.place(placement)
                deadline = time.monotonic() + PLACED_TIMEOUT
                while (nodes := stack.worker_nodes()) is None or not placed(nodes):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"workers not placed for {name} after {PLACED_TIMEOUT} s: on {nodes}")
                    time.sleep(1)
                bench(stack, max(100, tasks // 10))  # untimed: fills the registered-names cache, wakes the workers
                sample = {**bench(stack, tasks), "nodes": nodes}
                samples[name].append(sample)
                print(
                    f"  round {n + 1}, {name} {nodes}: {sample['completed_per_second']:.0f} completed/s, "
                    f"p50 {sample['latency_p50']:.3f} s, load {sample['load_average_before'][0]:.1f}",
                    file=sys.stderr,
                )
    finally:
        if stack is not None:
            stack.down()
        if not reused:
            lab("down")
    medians = {
        name: {
            key: round(statistics.median(s[key] for s in samples[name]), 4)
            for key in ("completed_per_second", "sent_per_second", "latency_p50", "latency_p95")
        }
        for name in PLACEMENTS
    }
    return {
        "tasks": tasks,
        "rounds": rounds,
        "workers": workers,
        "task": "tsum",
        "samples": samples,
        "medians": medians,
        "completed_per_second_against_manager": {
            name: round(medians[name]["completed_per_second"] / medians["manager"]["completed_per_second"], 3)
            for name in PLACEMENTS
        },
    }


def measure(rounds: int, tasks: int, workers: int) -> dict:
    """Run the comparison and write its samples to benchmarks/results/<time>-overlay.json."""
    taken = time.strftime("%Y-%m-%dT%H%M%S")
    document = {
        "machine": machine(),
        "taken": taken,
        "command": " ".join(["benchmarks/overlay.py", *sys.argv[1:]]),
        **compare(rounds, tasks, workers),
        "load_average_at_end": os.getloadavg(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    written = RESULTS / f"{taken}-overlay.json"
    written.write_text(json.dumps(document, indent=1) + "\n")
    document["written"] = str(written)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per placement")
    parser.add_argument("--tasks", type=int, default=1000, help="tsum tasks per run")
    parser.add_argument("--workers", type=int, default=2, help="worker replicas, the same in every placement")
    args = parser.parse_args()
    document = measure(args.rounds, args.tasks, args.workers)
    print(
        json.dumps(
            {
                "medians": document["medians"],
                "completed_per_second_against_manager": document["completed_per_second_against_manager"],
            },
            indent=1,
        )
    )
    print(f"written to {document['written']}")


if __name__ == "__main__":
    main()
