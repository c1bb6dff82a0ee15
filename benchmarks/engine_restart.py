"""After the Docker engine restarts, how long until the stack is ready, against the broker's own boot on that engine.

The stack is tcel's template on plain containers on scripts/swarm-lab's first node (an engine of its own, so the
engine everything else runs on is not restarted). Each round restarts that engine twice, in an order that
alternates: `stop` (SIGTERM: the engine stops its containers and exits, as `systemctl stop docker` does) and `kill`
(a power cut: SIGKILL to the engine and everything of the node), then `scripts/swarm-lab up` starts it again and
the containers come back by their restart policy. A probe in the node's network namespace, started while the engine
is down, notes when the broker first accepts an AMQP login, when the worker first answers a Celery ping, and when a
task (`add`, no delay) first round-trips: ready. Times are measured from the engine's start (its dockerd process's
start time); the anchor, the broker's own boot, from its container's start (`State.StartedAt`) until it accepted the
login, on the same restart. Target (issue 24): ready within the broker's boot + 2 s.

Needs root and the engine to itself (`flock /tmp/tcel-engine.lock`): it brings the lab up with 1 node unless a lab
is up (and then takes it down again). Writes benchmarks/results/<time>-engine_restart.json (every sample, the
medians).

    flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/engine_restart.py [--rounds 3]
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
LAB = str(REPO / "scripts" / "swarm-lab")
LAB_STATE = Path("/var/lib/tcel-swarm-lab")
NODE = "tcel-node-1"
SOCKET = f"unix:///run/tcel-swarm-lab/{NODE}.sock"
PID_FILE = Path(f"/run/tcel-swarm-lab/{NODE}.pid")
DOCKERD_LOG = LAB_STATE / "nodes" / NODE / "dockerd.log"
IN_NODE = ("nsenter", f"--net=/run/netns/{NODE}", "--")  # where the stack's ports are published on 127.0.0.1
RESULTS = REPO / "benchmarks" / "results"
MODES = ("stop", "kill")
PROBE_TIMEOUT = 180
TARGET = 2.0  # seconds over the broker's boot

sys.path.insert(0, str(REPO))
from run import machine  # noqa: E402  (benchmarks/run.py, beside this file)


def lab(*args: str) -> str:
    done = subprocess.run([LAB, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed: scripts/swarm-lab {' '.join(args)}\n{done.stderr[-2000:]}")
    return done.stderr


def process_start(pid: int) -> float:
    """When a process started, in seconds since the epoch (to the kernel's 10 ms clock tick)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - since_boot)


def api_listening(since: float) -> float | None:
    """When the node's engine last logged that its API listens, if after `since` (epoch seconds)."""
    from celery_cli.stack.docker_client import docker_time

    found = None
    for line in DOCKERD_LOG.read_text(errors="replace").splitlines():
        if 'msg="API listen on' in line and line.startswith('time="'):
            stamp = docker_time(line[6:].split('"', 1)[0])
            if stamp is not None and stamp.timestamp() >= since:
                found = stamp.timestamp()
    return found


def probe(project_name: str) -> None:
    """Run in the node's namespace (see --probe): print, as JSON, when the broker first took a login, the worker
    first answered a ping, and a task first round-tripped (epoch seconds)."""
    from celery import Celery

    from celery_cli import credentials
    from celery_cli.errors import ServiceUnreachable
    from celery_cli.probes import probe_broker
    from celery_cli.remote_control import Control
    from celery_cli.settings import resolve_project

    access = credentials.load(resolve_project(Path.cwd(), project_name))
    assert access is not None, "no credentials for the project"
    seen: dict[str, float] = {}
    deadline = time.monotonic() + PROBE_TIMEOUT
    while "broker" not in seen:
        try:
            probe_broker(access, 0.5)
            seen["broker"] = time.time()
        except ServiceUnreachable:
            if time.monotonic() > deadline:
                raise SystemExit(f"the broker took no login within {PROBE_TIMEOUT} s") from None
            time.sleep(0.02)
    while "ping" not in seen:
        with Control(access.broker_url()) as control:
            if control.ping(["celery@worker-1"], 0.1):
                seen["ping"] = time.time()
        if time.monotonic() > deadline:
            raise SystemExit(f"no ping answered within {PROBE_TIMEOUT} s")
    client = Celery(set_as_current=False, broker=access.broker_url(), backend=access.backend_url())
    while "task" not in seen:
        try:
            if client.send_task("tasks.add", (1, 1)).get(timeout=5) == 2:
                seen["task"] = time.time()
        except Exception:  # the backend not answering yet, or a result not back within 5 s: send another
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()
    print(json.dumps(seen))


class NodeStack:
    """A throw-away tcel project (the template) on plain containers on the lab's first node."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tcel-bench-restart-"))
        self.name = f"tcelbenchrestart{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "TCEL_PROJECT_NAME": self.name,
            "DOCKER_HOST": SOCKET,
            "TCEL_ENGINE": "containers",
            "TCEL_ADD_DELAY": "0",
        }

    def tcel(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [*IN_NODE, sys.executable, "-m", "celery_cli", *args]
        done = subprocess.run(command, cwd=self.directory, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise SystemExit(f"benchmark step failed: tcel {' '.join(args)}\n{done.stderr[-2000:]}")
        return done

    def worker_image(self, main) -> str:
        """The template's worker image, built on the main engine if it has none (the lab's nodes reach no package
        index)."""
        from celery_cli.settings import resolve_project, setting
        from celery_cli.stack.images import image_exists
        from celery_cli.stack.worker_image import worker_image

        python_image = setting("TCEL_PYTHON_IMAGE")
        image = worker_image(resolve_project(self.directory, self.name), None)
        tag = image.name(python_image)
        if not image_exists(main, tag):
            image.build(main, tag, python_image, lambda _line: None)
        return tag

    def start_probe(self) -> subprocess.Popen:
        return subprocess.Popen(
            [*IN_NODE, sys.executable, __file__, "--probe", self.name],
            cwd=self.directory,
            env={**self.env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def down(self) -> None:
        from celery_cli.credentials import state_file
        from celery_cli.settings import resolve_project

        self.tcel("down", "--volumes", check=False)
        project = resolve_project(self.directory, self.name)
        state_file(project).unlink(missing_ok=True)
        (project.state_dir / f"{project.name}.lock").unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def restart(stack: NodeStack, mode: str, nodes: int) -> dict:
    """Stop the node's engine (`mode`), start it again, and time the stack's return (seconds from the engine's
    start)."""
    import docker

    from celery_cli.names import LABEL_PROJECT, LABEL_SERVICE
    from celery_cli.stack.docker_client import docker_time

    load = os.getloadavg()
    lab(mode, NODE)
    probing = stack.start_probe()
    try:
        lab("up", str(nodes))
        engine = process_start(int(PID_FILE.read_text()))
        out, err = probing.communicate(timeout=PROBE_TIMEOUT)
    finally:
        if probing.poll() is None:
            probing.kill()
    if probing.returncode != 0:
        raise SystemExit(f"the probe failed after `{mode}`:\n{err[-2000:]}")
    seen = json.loads(out)
    node = docker.DockerClient(base_url=SOCKET, timeout=60)
    try:
        containers = node.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={stack.name}"})
        started = {c.labels[LABEL_SERVICE]: docker_time(c.attrs["State"]["StartedAt"]) for c in containers}
        restarts = {c.labels[LABEL_SERVICE]: c.attrs["RestartCount"] for c in containers}
    finally:
        node.close()
    listening = api_listening(engine)
    sample = {
        "mode": mode,
        "engine_api": listening - engine if listening else None,
        **{
            f"{name}_container_started": (stamp.timestamp() - engine) if stamp else None
            for name, stamp in started.items()
        },
        "broker_accepts": seen["broker"] - engine,
        "worker_ping": seen["ping"] - engine,
        "ready": seen["task"] - engine,
        "restart_counts": restarts,
        "load_average_before": load,
    }
    sample["broker_boot"] = sample["broker_accepts"] - sample["broker_container_started"]
    sample["ready_over_broker_boot"] = sample["ready"] - sample["broker_boot"]
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in sample.items()}


def compare(rounds: int) -> dict:
    """Every sample, and per mode the medians of ready, the broker's boot and their difference."""
    import docker

    from celery_cli.settings import setting

    if os.geteuid() != 0:
        raise SystemExit("benchmarks/engine_restart.py needs root (scripts/swarm-lab starts Docker engines)")
    reused = (LAB_STATE / "swarm").exists()
    nodes = len(list((LAB_STATE / "nodes").glob("tcel-node-*"))) if reused else 1
    if not reused:
        lab("up", str(nodes))
    stack = None
    samples: list[dict] = []
    try:
        stack = NodeStack()
        main = docker.from_env(timeout=600)
        try:
            images = (setting("TCEL_BROKER_IMAGE"), setting("TCEL_BACKEND_IMAGE"), stack.worker_image(main))
        finally:
            main.close()
        lab("load", *images)
        stack.tcel("up")
        for n in range(rounds):
            for mode in MODES if n % 2 == 0 else MODES[::-1]:
                sample = restart(stack, mode, nodes)
                samples.append(sample)
                print(
                    f"  round {n + 1}, {mode}: ready {sample['ready']:.2f} s after the engine's start, the broker's "
                    f"boot {sample['broker_boot']:.2f} s (from {sample['broker_container_started']:.2f} s), "
                    f"difference {sample['ready_over_broker_boot']:.2f} s, load {sample['load_average_before'][0]:.1f}",
                    file=sys.stderr,
                )
    finally:
        if stack is not None:
            stack.down()
        if not reused:
            lab("down")
    keys = ("engine_api", "broker_container_started", "broker_boot", "worker_ping", "ready", "ready_over_broker_boot")
    medians = {
        mode: {
            key: round(statistics.median(s[key] for s in samples if s["mode"] == mode and s[key] is not None), 3)
            for key in keys
        }
        for mode in MODES
    }
    return {
        "rounds": rounds,
        "target": f"ready within the broker's boot + {TARGET} s",
        "samples": samples,
        "medians": medians,
        "met": {mode: medians[mode]["ready_over_broker_boot"] <= TARGET for mode in MODES},
    }


def measure(rounds: int) -> dict:
    """Run the benchmark and write its samples to benchmarks/results/<time>-engine_restart.json."""
    taken = time.strftime("%Y-%m-%dT%H%M%S")
    document = {
        "machine": machine(),
        "taken": taken,
        "command": " ".join(["benchmarks/engine_restart.py", *sys.argv[1:]]),
        **compare(rounds),
        "load_average_at_end": os.getloadavg(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    written = RESULTS / f"{taken}-engine_restart.json"
    written.write_text(json.dumps(document, indent=1) + "\n")
    document["written"] = str(written)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="restarts of each kind")
    parser.add_argument("--probe", metavar="PROJECT", help=argparse.SUPPRESS)  # the probe, run in the node
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return
    document = measure(args.rounds)
    print(json.dumps({"medians": document["medians"], "met": document["met"]}, indent=1))
    print(f"written to {document['written']}")


if __name__ == "__main__":
    main()
