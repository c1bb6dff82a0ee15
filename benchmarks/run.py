"""tcel side by side with what users would otherwise run, in one run on one machine.

Each comparison runs several rounds, alternating the two sides, and reports medians and their ratio against
the target. Writes benchmarks/results/<time>-<steps>.json (record()). Run through scripts/bench (it sets
everything up).
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
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TCEL = str(BIN / "tcel")
CELERY = str(BIN / "celery")
RESULTS = REPO / "benchmarks" / "results"
# `docker swarm init` on the main engine (scripts/swarm-lab) cuts name resolution in other stacks' networks
ONLY_WHEN_NAMED = {"overlay"}

sys.path.insert(0, str(REPO))
from celery_cli import credentials  # noqa: E402
from celery_cli.settings import resolve_project  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from any_project import any_project, worker_side  # noqa: E402


def run(command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO, check: bool = True) -> str:
    done = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return done.stdout


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def alternate(rounds: int, tcel: Callable[[], object], other: Callable[[], object]) -> tuple[list[float], list[float]]:
    """Time both sides `rounds` times, alternating which goes first."""
    a, b = [], []
    for n in range(rounds):
        if n % 2 == 0:
            a.append(timed(tcel))
            b.append(timed(other))
        else:
            b.append(timed(other))
            a.append(timed(tcel))
    return a, b


class Bench:
    def __init__(self, rounds: int, heavy_rounds: int, broker_port: int = 25672, backend_port: int = 26379) -> None:
        self.rounds = rounds
        self.heavy_rounds = heavy_rounds
        self.rows: list[dict] = []
        self.directory = Path(tempfile.mkdtemp(prefix="tcel-bench-"))
        self.name = f"tcelbench{uuid.uuid4().hex[:6]}"
        self.compose_name = f"{self.name}compose"
        self.ports = {"TCEL_BROKER_PORT": str(broker_port), "TCEL_BACKEND_PORT": str(backend_port)}
        self.compose_ports = (broker_port + 1, backend_port + 1)
        self.tcel_env = {**self.ports, "TCEL_PROJECT_NAME": self.name}
        self.tasks = 2000

    def row(
        self,
        what: str,
        tcel: list[float],
        other: list[float],
        baseline: str,
        target: float | None,
        unit: str = "s",
        at_least: bool = False,
    ) -> None:
        """One comparison; a target of None: reported, not aimed at. For times the ratio is tcel / baseline
        and the target a ceiling; for rates (unit "/s") it is baseline / tcel, unless `at_least`: then tcel /
        baseline, and the target a floor (tcel sends at least 0.6 x the broker's ceiling)."""
        a, b = statistics.median(tcel), statistics.median(other)
        ratio = a / b if unit == "s" or at_least else b / a
        met = None if target is None else ratio >= target if at_least else ratio <= target
        self.rows.append(
            {
                "what": what,
                "tcel": round(a, 4),
                "baseline": baseline,
                "baseline_value": round(b, 4),
                "unit": unit,
                "ratio": round(ratio, 3),
                "target": target,
                "at_least": at_least,
                "met": met,
                "rounds": len(tcel),
                "samples_tcel": [round(x, 4) for x in tcel],
                "samples_baseline": [round(x, 4) for x in other],
                "load_average": os.getloadavg(),
            }
        )
        print(
            f"  {what}: tcel {a:.3f}{unit} vs {b:.3f}{unit} -> {ratio:.2f} (target {'>=' if at_least else '<='} "
            f"{target})",
            file=sys.stderr,
        )
        print(
            f"    samples: tcel {[round(x, 2) for x in tcel]}, baseline {[round(x, 2) for x in other]}", file=sys.stderr
        )

    def floor_row(
        self, what: str, tcel: list[float], floor: list[float], floor_name: str, target: float, at_least: bool = False
    ) -> None:
        """A row with an absolute target: tcel's own time on top of a floor measured in the same runs, or (with
        `at_least`) a rate that must reach the target, the floor shown beside it."""
        a, b = statistics.median(tcel), statistics.median(floor)
        if at_least:
            print(f"  {what}: {a:.0f}/s ({floor_name} {b:.0f}/s; target >= {target}/s)", file=sys.stderr)
        else:
            print(f"  {what}: {a:.3f}s on top of {floor_name} {b:.3f}s (target <= {target}s)", file=sys.stderr)
        self.rows.append(
            {
                "what": what,
                "tcel": round(a, 4),
                "baseline": floor_name,
                "baseline_value": round(b, 4),
                "unit": "/s" if at_least else "s",
                "ratio": None,
                "target": target,
                "at_least": at_least,
                "met": a >= target if at_least else a <= target,
                "rounds": len(tcel),
                "samples_tcel": [round(x, 4) for x in tcel],
                "samples_baseline": [round(x, 4) for x in floor],
                "load_average": os.getloadavg(),
            }
        )

    def tcel(self, *args: str, check: bool = True) -> str:
        return run([TCEL, *args], env=self.tcel_env, cwd=self.directory, check=check)

    # ---- comparisons --------------------------------------------------------------------------------

    def startup(self) -> None:
        a, b = alternate(self.rounds * 2, lambda: run([TCEL, "--help"]), lambda: run([CELERY, "--help"]))
        self.row("tcel --help vs celery --help", a, b, "celery --help", 0.4)
        a, b = alternate(self.rounds * 2, lambda: run([TCEL, "add", "--help"]), lambda: run([CELERY, "--help"]))
        self.row("tcel add --help vs celery --help", a, b, "celery --help", 0.4)

    def compose(self, *args: str) -> str:
        env_file = self.directory / "compose.env"
        return run(["docker", "compose", "-p", self.compose_name, "--env-file", str(env_file), *args])

    def compose_up_and_ping(self) -> None:
        """Compose v2 at its best: `up --wait` (the compose file's cheap 2 s healthchecks), then one Python
        process pinging the worker at tcel's own interval until it answers."""
        self.compose("up", "-d", "--wait")
        c = self.compose_connection
        env = {"CELERY_BROKER_URL": c.broker_url(), "CELERY_RESULT_BACKEND_URL": c.backend_url()}
        run([sys.executable, str(REPO / "benchmarks" / "celery_client.py"), "ping", "celery@worker-1"], env=env)

    def lifecycle(self) -> None:
        """tcel up / down against `docker compose up --wait` + a ping loop / `docker compose down`, the compose
        file stopping each service with the same signal and grace as tcel."""
        self.tcel("up")  # creates volumes, builds the worker image; not timed
        self.tcel("down")
        c = credentials.load(resolve_project(self.directory, self.name))
        self.compose_connection = c.with_ports("127.0.0.1", *self.compose_ports)
        (self.directory / "compose.env").write_text(
            "".join(
                f"{k}={v}\n"
                for k, v in {
                    "TCEL_BROKER_PASSWORD": c.broker_password,
                    "TCEL_BACKEND_PASSWORD": c.backend_password,
                    "TCEL_BROKER_PORT": self.compose_ports[0],
                    "TCEL_BACKEND_PORT": self.compose_ports[1],
                    **{
                        k: os.environ[k]
                        for k in ("TCEL_BROKER_IMAGE", "TCEL_BACKEND_IMAGE", "TCEL_PYTHON_IMAGE")
                        if k in os.environ
                    },
                }.items()
            )
        )
        self.compose("build")
        self.compose("up", "-d")  # first boot of its volumes; not timed
        self.compose("down")
        ups, compose_ups, downs, compose_downs = [], [], [], []
        for n in range(self.heavy_rounds):
            sides = [("tcel", ups, downs), ("compose", compose_ups, compose_downs)]
            for side, up_times, down_times in sides if n % 2 == 0 else reversed(sides):
                if side == "tcel":
                    up_times.append(timed(lambda: self.tcel("up")))
                    down_times.append(timed(lambda: self.tcel("down")))
                else:
                    up_times.append(timed(self.compose_up_and_ping))
                    down_times.append(timed(lambda: self.compose("down")))
        self.row(
            "up from down (images present) until workers answer a ping",
            ups,
            compose_ups,
            "docker compose up --wait + ping loop (one process, tcel's interval)",
            0.6,
        )
        self.row("down", downs, compose_downs, "docker compose down (same stop signals and grace)", 0.3)
        self.compose("down", "-v")

    def up_floor(self) -> None:
        """`tcel up` from down minus the broker's own boot in the same run: from its container's start to its
        'Server startup complete' log line (RabbitMQ accepts AMQP logins by then)."""
        import docker

        client = docker.from_env()
        self.tcel("up")  # volumes, image; not timed
        overheads, boots = [], []
        for _ in range(self.heavy_rounds + 2):
            self.tcel("down")
            wall = timed(lambda: self.tcel("up"))
            broker = client.containers.get(f"tcel-{self.name}-broker")
            boot = broker_boot(broker)
            overheads.append(wall - boot)
            boots.append(boot)
        self.floor_row("up from down minus the broker's own boot", overheads, boots, "broker boot", 0.5)

    def round_trip(self) -> None:
        self.tcel("up")
        c = credentials.load(resolve_project(self.directory, self.name))
        env = {"CELERY_BROKER_URL": c.broker_url(), "CELERY_RESULT_BACKEND_URL": c.backend_url()}

        def celery_call_and_result() -> None:
            task_id = run([CELERY, "-A", "tasks", "call", "tasks.tsum", "--args", "[[1, 2, 3]]"], env=env).strip()
            assert run([CELERY, "-A", "tasks", "result", task_id], env=env).strip() == "6"

        def send_task_get() -> None:
            out = run([sys.executable, str(REPO / "benchmarks" / "celery_client.py"), "tsum"], env=env)
            assert out.strip() == "6"

        def tcel_tsum() -> None:
            assert self.tcel("tsum", "1", "2", "3", "--wait").strip() == "6"

        a, b = alternate(self.rounds * 2, tcel_tsum, celery_call_and_result)
        self.row("tsum 1 2 3 --wait, end to end", a, b, "celery call + celery result (two processes)", 0.5)
        a, b = alternate(self.rounds * 2, tcel_tsum, send_task_get)
        self.row("tsum 1 2 3 --wait, end to end", a, b, "one Python process: send_task(...).get()", 0.5)

    def call_round_trip(self) -> None:
        """`tcel call` (JSON arguments, the registered-name check from its cache) against its preset `tsum`."""
        self.tcel("up")

        def tcel_call() -> None:
            assert self.tcel("call", "tasks.tsum", "[1,2,3]", "--wait").strip() == "6"

        def tcel_tsum() -> None:
            assert self.tcel("tsum", "1", "2", "3", "--wait").strip() == "6"

        tcel_call()  # fills the cache of registered names, as any first call after `up` does
        a, b = alternate(self.rounds * 2, tcel_call, tcel_tsum)
        self.row("call tasks.tsum '[1,2,3]' --wait vs tsum 1 2 3 --wait", a, b, "tcel tsum 1 2 3 --wait", 1.2)

    def scaling(self) -> None:
        """`tcel results` and `tcel status` with 100,000 stored results against 1,000, alternated: the stack's
        backend holds one size in its database 0 (which tcel reads) and the other in database 3, and SWAPDB
        exchanges them between runs. A run that fails (a non-zero exit) fails the benchmark: it never counts
        as a fast run."""
        import redis

        c = credentials.load(resolve_project(self.directory, self.name))
        clients = [redis.Redis(host=c.host, port=c.backend_port, password=c.backend_password, db=db) for db in (0, 3)]
        for client, size in zip(clients, (1_000, 100_000), strict=False):
            client.flushdb()
            fill(client, 0, size)
        shown = 1_000  # the size in database 0

        def at(size: int, command: str) -> Callable[[], object]:
            def measured() -> object:
                nonlocal shown
                if shown != size:
                    clients[0].swapdb(0, 3)
                    shown = size
                return self.tcel(command)

            return measured

        for command in ("results", "status"):
            big, small = alternate(self.rounds * 2, at(100_000, command), at(1_000, command))
            self.row(
                f"tcel {command} at 100,000 stored results vs at 1,000", big, small, f"tcel {command} at 1,000", 1.5
            )
        clients[1].flushdb()

    def throughput(self, count: int) -> None:
        """`tcel bench` against a plain Celery script (completed/s), and tcel's send rate against the broker's
        own publish-with-confirms ceiling (benchmarks/kombu_ceiling.py: the best of its windows, with and
        without TCP_CORK), measured twice: into a durable queue of its own that nobody consumes (the broker
        alone), and into the workers' `celery` queue while they consume (the conditions tcel's sends meet: on
        2 cores the workers take CPU from the publisher and the broker). The four run in an order that rotates
        each round."""
        c = credentials.load(resolve_project(self.directory, self.name))
        plain, completed, sent, ceiling, consumed_ceiling = [], [], [], [], []
        ceiling_script = [sys.executable, str(REPO / "benchmarks" / "kombu_ceiling.py"), c.broker_url(), str(count)]

        def tcel_bench() -> None:
            result = json.loads(self.tcel("bench", "-n", str(count), "--json"))
            completed.append(result["completed_per_second"])
            sent.append(result["sent_per_second"])

        def plain_celery() -> None:
            out = run(
                [
                    sys.executable,
                    str(REPO / "benchmarks" / "plain_celery.py"),
                    c.broker_url(),
                    c.backend_url(),
                    str(count),
                    "10",
                ]
            )
            plain.append(json.loads(out)["completed_per_second"])

        def broker_ceiling() -> None:
            ceiling.append(json.loads(run(ceiling_script))["per_second"])

        def ceiling_while_consumed() -> None:
            out = run([*ceiling_script, "--queue", "celery"])  # the same best of windows and corking
            consumed_ceiling.append(json.loads(out)["per_second"])

        steps = [tcel_bench, plain_celery, broker_ceiling, ceiling_while_consumed]
        for n in range(self.heavy_rounds):
            for action in steps[n % 4 :] + steps[: n % 4]:
                action()
        self.row(
            f"bench {count} x tsum, completed/s (ratio = plain / tcel)",
            completed,
            plain,
            "plain Celery script (send_task loop, then get)",
            1.25,
            unit="/s",
        )
        self.row(
            f"bench {count} x tsum, sent/s (confirmed) against the broker's ceiling (ratio = tcel / ceiling)",
            sent,
            ceiling,
            "py-amqp, windowed confirms, durable queue, persistent, no consumer",
            0.6,
            unit="/s",
            at_least=True,
        )
        self.row(
            f"bench {count} x tsum, sent/s against the ceiling into the consumed queue",
            sent,
            consumed_ceiling,
            "the same publisher into `celery` while the workers consume",
            0.6,
            unit="/s",
            at_least=True,
        )
        self.floor_row(f"bench {count} x tsum, sent/s (confirmed)", sent, ceiling, "the ceiling", 5000, at_least=True)

    def publisher(self, count: int) -> None:
        """tcel's publisher alone against the ceiling, both into a durable queue of their own that nobody
        consumes (benchmarks/tcel_publisher.py and kombu_ceiling.py), alternated: the publisher's own cost,
        without the workers' share of the CPU that `tcel bench` pays."""
        c = credentials.load(resolve_project(self.directory, self.name))
        ours, ceiling = [], []

        def tcel_publisher() -> None:
            out = run([sys.executable, str(REPO / "benchmarks" / "tcel_publisher.py"), c.broker_url(), str(count)])
            ours.append(json.loads(out)["per_second"])

        def broker_ceiling() -> None:
            out = run([sys.executable, str(REPO / "benchmarks" / "kombu_ceiling.py"), c.broker_url(), str(count)])
            ceiling.append(json.loads(out)["per_second"])

        for n in range(self.rounds):
            for action in (tcel_publisher, broker_ceiling) if n % 2 == 0 else (broker_ceiling, tcel_publisher):
                action()
        self.row(
            f"tcel's publisher alone, {count} tasks, confirmed/s (ratio = tcel / ceiling)",
            ours,
            ceiling,
            "py-amqp, windowed confirms, durable queue, persistent, no consumer",
            0.6,
            unit="/s",
            at_least=True,
        )

    def workers(self, count: int) -> None:
        """`tcel bench --workers 1,2,4`: completed/s and latency per worker count, the order alternating each
        round; a failed run is reported as failed (and fails this step), never as a fast one."""
        done = subprocess.run(
            [TCEL, "bench", "--workers", "1,2,4", "--rounds", str(self.heavy_rounds), "-n", str(count), "--json"],
            cwd=self.directory,
            env={**os.environ, **self.tcel_env},
            capture_output=True,
            text=True,
        )
        result = json.loads(done.stdout) if done.stdout.strip() else {"summary": [], "runs": []}
        self.scaling_rows = result
        for row in result["summary"]:
            print(f"  {row}", file=sys.stderr)
        if done.returncode != 0:
            raise SystemExit(f"tcel bench --workers failed (exit {done.returncode}): {done.stderr[-500:]}")

    def edit_loop(self) -> None:
        """From saving tasks.py to the first task served by the new code (benchmarks/edit_loop.py). Every sample
        and tcel's reload lines go into the run's JSON, also those of a run that fails part way."""
        from edit_loop import compare

        samples: dict[str, list[float]] = {}
        self.edit_loop_runs = {"samples": samples, "tcel_reloads": []}
        try:
            compare(self.rounds, samples, self.edit_loop_runs["tcel_reloads"])
        except Exception as exc:  # a client that timed out, say: a failed step, the samples so far kept
            raise SystemExit(f"edit loop: {type(exc).__name__}: {exc}") from exc
        tcel = samples["tcel up --watch"]
        self.row(
            "edit loop: save tasks.py until a task is served by the new code",
            tcel,
            samples["docker compose watch (rebuild)"],
            "docker compose watch, rebuild action",
            0.5,
        )
        self.row(
            "edit loop, against Compose's sync+restart",
            tcel,
            samples["docker compose watch (sync+restart)"],
            "docker compose watch, sync+restart action",
            None,
        )

    def stream_sum(self, numbers: int) -> None:
        """`seq 1 N | tcel tsum - --wait` with 2 worker containers against 1, on a stack of its own
        (benchmarks/stream_sum.py), `rounds` runs of each; every sample, with its RSS and CPU, is recorded."""
        from stream_sum import compare

        self.stream_sum_samples: dict = {}
        for c in compare(self.stream_sum_samples, numbers, self.rounds, [10, 1])["configurations"]:
            two, one = ([s["seconds"] for s in c["samples"][key]] for key in ("2_workers", "1_workers"))
            self.row(
                f"tsum - of {numbers:,} numbers, 2 workers vs 1 ({c['concurrency']} processes each)",
                two,
                one,
                "1 worker container",
                0.6,
            )

    def overlay(self) -> None:
        """`tcel bench` against 2 workers on the Swarm manager, on one lab node and spread over two lab nodes, on a
        stack of its own (benchmarks/overlay.py; needs root and the engine to itself; writes its own JSON too)."""
        from overlay import measure

        document = measure(self.heavy_rounds, self.tasks, 2)
        samples = {name: [s["completed_per_second"] for s in runs] for name, runs in document["samples"].items()}
        for name in ("one_lab_node", "two_lab_nodes"):
            self.row(
                f"bench {self.tasks} x tsum on Swarm, completed/s: 2 workers on {name.replace('_', ' ')} vs "
                "on the manager (ratio = there / manager)",
                samples[name],
                samples["manager"],
                "2 workers on the manager, beside the broker and backend",
                None,
                unit="/s",
                at_least=True,
            )

    def tls(self) -> None:
        """`tcel bench` sent/s over TLS (`--bind 0.0.0.0`) against the same on loopback (no TLS), two stacks of
        their own side by side, alternating (benchmarks/tls.py; writes its own JSON too)."""
        from tls import measure

        document = measure(self.heavy_rounds * 2 + 1, self.tasks)
        samples = document["samples"]
        for key, unit, target in (("sent_per_second", "sent", 0.85), ("completed_per_second", "completed", None)):
            self.row(
                f"bench {self.tasks} x tsum, {unit}/s over TLS (--bind 0.0.0.0) vs on loopback without "
                "(ratio = TLS / plain)",
                [s[key] for s in samples["tls"]],
                [s[key] for s in samples["plain"]],
                "the same project on loopback: plain AMQP and Redis",
                target,
                unit="/s",
                at_least=True,
            )

    def cleanup(self) -> None:
        self.tcel("down", "--volumes", check=False)
        if (self.directory / "compose.env").exists():  # only the lifecycle comparison starts compose stacks
            run(
                [
                    "docker",
                    "compose",
                    "-p",
                    self.compose_name,
                    "--env-file",
                    str(self.directory / "compose.env"),
                    "down",
                    "-v",
                ],
                check=False,
            )
        shutil.rmtree(self.directory, ignore_errors=True)


def broker_boot(container) -> float:
    """Seconds from the broker container's start to RabbitMQ's 'Server startup complete' line."""
    from datetime import datetime

    def moment(stamp: str) -> float:
        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()

    started = moment(container.attrs["State"]["StartedAt"])
    for line in container.logs(timestamps=True).decode(errors="replace").splitlines():
        if "Server startup complete" in line:
            return moment(line.split(" ", 1)[0]) - started
    raise SystemExit(f"{container.name} never logged 'Server startup complete'")


def fill(client, start: int, end: int) -> int:
    """Store results start..end as Celery's backend and the worker's index would (1 day expiry)."""
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for n in range(start, end):
        task_id = f"bench-{n:08d}"
        meta = {
            "status": "SUCCESS",
            "result": n,
            "traceback": None,
            "children": [],
            "task_id": task_id,
            "date_done": "2026-01-01T00:00:00+00:00",
            "name": "tasks.tsum",
            "args": [[n]],
            "worker": "bench",
        }
        pipe.set(f"celery-task-meta-{task_id}", json.dumps(meta), ex=86400)
        pipe.zadd("tcel:tasks", {task_id: now + n / 1e6})
        pipe.hset(
            f"tcel:task:{task_id}",
            mapping={"name": "tasks.tsum", "args": f"[[{n}]]", "started": now, "finished": now + 0.001},
        )
        pipe.expire(f"tcel:task:{task_id}", 86400)
        if n % 1000 == 999:
            pipe.zremrangebyrank("tcel:tasks", 0, -10_001)
            pipe.execute()
    pipe.zremrangebyrank("tcel:tasks", 0, -10_001)
    pipe.execute()
    return end


def machine() -> dict:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def record(chosen: list[str], bench: Bench, failed: dict[str, str]) -> Path:
    """One small JSON per run, committed: the raw samples behind docs/performance.md's tables, with the command, the
    machine and the load averages; the steps that keep more than rows (workers, stream_sum) add theirs."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    taken = time.strftime("%Y-%m-%dT%H%M%S")
    extra = {
        key: getattr(bench, attribute)
        for key, attribute in (
            ("workers", "scaling_rows"),
            ("stream_sum", "stream_sum_samples"),
            ("edit_loop", "edit_loop_runs"),
        )
        if hasattr(bench, attribute)
    }
    document = {
        "machine": machine(),
        "taken": taken,
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]),
        "load_average_at_end": os.getloadavg(),
        "rows": bench.rows,
        "failed_steps": failed,
        **extra,
    }
    written = RESULTS / f"{taken}-{'-'.join(chosen)}.json"
    written.write_text(json.dumps(document, indent=2) + "\n")
    return written


def table(rows: list[dict]) -> str:
    lines = [
        "| comparison | tcel (median) | baseline | baseline (median) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        met = "-" if r["target"] is None else "yes" if r["met"] else "no"
        sign = "≥" if r.get("at_least") else "≤"
        if r["target"] is None:
            target = "-"
        elif r["ratio"] is not None:
            target = f"{sign} {r['target']}"
        else:
            target = f"{sign} {r['target']}{r['unit']}" + ("" if r.get("at_least") else " on top")
        lines.append(
            f"| {r['what']} | {r['tcel']:.3f}{r['unit']} | {r['baseline']} | "
            f"{r['baseline_value']:.3f}{r['unit']} | {ratio} | {target} | {met} |"
        )
    return "\n".join(lines)


def scaling_table(result: dict) -> str:
    lines = [
        "| workers | runs | failed runs | completed/s | sent/s | latency p50 | latency p95 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["summary"]:

        def value(key: str, scale: float = 1, unit: str = "", r: dict = r) -> str:
            return "-" if r[key] is None else f"{r[key] * scale:.0f}{unit}"

        lines.append(
            f"| {r['workers']} | {r['runs']} | {r['failed_runs']} | {value('completed_per_second')} | "
            f"{value('sent_per_second')} | {value('latency_p50', 1000, ' ms')} | "
            f"{value('latency_p95', 1000, ' ms')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds of the quick comparisons (x2 for some), and stream_sum's runs per side",
    )
    parser.add_argument("--heavy-rounds", type=int, default=3, help="rounds of up/down and throughput")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per throughput round")
    parser.add_argument("--numbers", type=int, default=10_000_000, help="numbers per stream_sum run")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="startup lifecycle up_floor round_trip call_round_trip scaling throughput publisher workers "
        "edit_loop stream_sum any_project worker_side tls (default: all of these), overlay (only when named: Swarm, "
        "root, the engine to itself)",
    )
    parser.add_argument(
        "--ports",
        type=int,
        nargs=2,
        default=(25672, 26379),
        metavar=("BROKER", "BACKEND"),
        help="host ports of the benchmark's stack (Compose's use the next ones up)",
    )
    args = parser.parse_args()
    bench = Bench(args.rounds, args.heavy_rounds, *args.ports)
    bench.tasks = args.tasks
    steps = {
        "startup": bench.startup,
        "lifecycle": bench.lifecycle,
        "up_floor": bench.up_floor,
        "round_trip": bench.round_trip,
        "call_round_trip": bench.call_round_trip,
        "scaling": bench.scaling,
        "throughput": lambda: bench.throughput(args.tasks),
        "publisher": lambda: bench.publisher(args.tasks),
        "workers": lambda: bench.workers(args.tasks),
        "edit_loop": bench.edit_loop,
        "stream_sum": lambda: bench.stream_sum(args.numbers),
        "overlay": bench.overlay,
        "tls": bench.tls,
        "any_project": lambda: any_project(bench),
        "worker_side": lambda: worker_side(bench, args.tasks),
    }
    chosen = args.only or [name for name in steps if name not in ONLY_WHEN_NAMED]
    failed = {}
    try:
        for name in chosen:
            print(f"{name}:", file=sys.stderr)
            if name in ("scaling", "throughput", "publisher", "workers"):
                bench.tcel("up")  # a no-op when the stack runs
            try:
                steps[name]()
            except SystemExit as exc:  # a failing step is recorded as failed, and the others still run
                failed[name] = str(exc)
                print(f"  FAILED: {exc}", file=sys.stderr)
    finally:
        bench.cleanup()
    written = record(chosen, bench, failed)
    print(table(bench.rows))
    if hasattr(bench, "scaling_rows"):
        print("\n" + scaling_table(bench.scaling_rows))
    print(f"\nmachine: {machine()}, load average {os.getloadavg()}; written to {written}")
    if failed:
        raise SystemExit(f"failed steps: {', '.join(failed)}")


if __name__ == "__main__":
    main()
