"""Redis as the broker against RabbitMQ, side by side in one run (issue 26's performance targets).

Brings up two stacks of tcel's template on this engine, one with `--broker rabbitmq` and one with
`--broker redis` (the same images otherwise), then, alternating the sides each round:
- `tcel tsum 1 2 3 --wait` end to end on each (target: Redis at most 1.1 x RabbitMQ);
- `tcel bench -n COUNT --json` sent/s on the Redis stack, against the anchor: a plain kombu Redis publisher at
  its best (kombu's Redis transport, one Producer on one connection, the same protocol-2 message Celery's
  `as_task_v2` builds for the same task, published COUNT times into a queue of its own that nobody consumes,
  deleted after; target: tcel at least 0.8 x it).
Both stacks are removed at the end (`down --volumes`). Writes benchmarks/results/<time>-redis_broker.json (the
command, the load average, every sample) and prints the medians.
Usage: python benchmarks/redis_broker.py [--rounds 9] [--count 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tcel(project: str, directory: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "celery_cli", *args, "--project-name", project]
    return subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=600)


def round_trip(project: str, directory: str) -> float:
    started = time.perf_counter()
    done = tcel(project, directory, "tsum", "1", "2", "3", "--wait")
    seconds = time.perf_counter() - started
    if done.returncode != 0 or done.stdout.strip() != "6":
        raise SystemExit(f"tsum failed on {project}: {done.stderr}")
    return seconds


def kombu_ceiling(broker_url: str, count: int) -> float:
    """Messages per second a plain kombu Producer publishes to a Redis broker (the message Celery builds)."""
    from celery import Celery
    from kombu import Connection, Exchange, Queue

    celery = Celery(set_as_current=False, broker=broker_url)
    numbers = list(range(10))
    message = celery.amqp.as_task_v2(str(uuid.uuid4()), "tasks.tsum", args=[numbers], kwargs={})
    body = json.dumps(message.body).encode()
    name = f"ceiling-{uuid.uuid4().hex[:8]}"
    with Connection(broker_url) as connection:
        producer = connection.Producer()
        queue = Queue(name, Exchange(name, "direct"), routing_key=name)
        producer.publish(
            body,
            exchange="",
            routing_key=name,
            declare=[queue],
            headers=message.headers,
            content_type="application/json",
            content_encoding="utf-8",
            **message.properties,
        )
        started = time.perf_counter()
        for _ in range(count):
            producer.publish(
                body,
                exchange="",
                routing_key=name,
                headers=message.headers,
                content_type="application/json",
                content_encoding="utf-8",
                **message.properties,
            )
        rate = count / (time.perf_counter() - started)
        queue(connection.default_channel).delete()
    return rate


def bench_sent(project: str, directory: str, count: int) -> float:
    done = tcel(project, directory, "bench", "-n", str(count), "--json")
    if done.returncode != 0:
        raise SystemExit(f"bench failed on {project}: {done.stderr}")
    return float(json.loads(done.stdout)["sent_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--count", type=int, default=3000)
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tcel-bench-redis-")
    projects = {kind: f"benchredis{kind}{uuid.uuid4().hex[:4]}" for kind in ("rabbitmq", "redis")}
    samples: dict[str, list[float]] = {"rt_rabbitmq": [], "rt_redis": [], "bench_redis": [], "kombu_redis": []}
    try:
        for kind, project in projects.items():
            os.environ.update(TCEL_BROKER_PORT=str(free_port()), TCEL_BACKEND_PORT=str(free_port()))
            up = tcel(project, directory, "up", "--broker", kind)
            if up.returncode != 0:
                raise SystemExit(f"up failed: {up.stderr}")
        from celery_cli import credentials
        from celery_cli.settings import resolve_project

        access = credentials.load(resolve_project(Path(directory), projects["redis"]))
        assert access is not None
        for side in range(options.rounds):
            order = ("rabbitmq", "redis") if side % 2 == 0 else ("redis", "rabbitmq")
            for kind in order:
                samples[f"rt_{kind}"].append(round_trip(projects[kind], directory))
            if side % 2 == 0:
                samples["bench_redis"].append(bench_sent(projects["redis"], directory, options.count))
                samples["kombu_redis"].append(kombu_ceiling(access.broker_url(), options.count))
            else:
                samples["kombu_redis"].append(kombu_ceiling(access.broker_url(), options.count))
                samples["bench_redis"].append(bench_sent(projects["redis"], directory, options.count))
    finally:
        for project in projects.values():
            tcel(project, directory, "down", "--volumes")
    medians = {key: statistics.median(values) for key, values in samples.items()}
    ratios = {
        "round_trip_redis_over_rabbitmq": medians["rt_redis"] / medians["rt_rabbitmq"],
        "sent_redis_over_kombu": medians["bench_redis"] / medians["kombu_redis"],
    }
    record = {
        "command": " ".join(["python", "benchmarks/redis_broker.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_end": os.getloadavg(),
        "medians": medians,
        "ratios": ratios,
        "samples": samples,
    }
    out = REPO / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%dT%H%M%S', time.gmtime())}-redis_broker.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({"medians": medians, "ratios": ratios, "file": str(out.relative_to(REPO))}, indent=1))


if __name__ == "__main__":
    main()
