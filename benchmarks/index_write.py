"""The worker side's cost of tcel's task index per task (issue 24's bounded backend): the three writes each task
makes (received, started, finished) as the hooks send them now (one INDEX_SCRIPT call in one pipeline, which also
deletes what it trims) and as they sent them before (a pipeline of ZADD, two trims and EXPIREs, HSET; records left
for a day), against the same Redis, alternating round by round; then the keys each leaves once the index is full.

    redis-server --port 16399 --save '' --appendonly no --daemonize yes   # Debian 12's redis-server 7.0
    .venv/bin/python benchmarks/index_write.py --url redis://127.0.0.1:16399/15 [--rounds 6 --tasks 20000]

The Redis database given is flushed. Writes benchmarks/results/<time>-index_write.json (every sample, medians).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
import types
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"


def hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("bench_worker_hooks", ROOT / "worker_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def before(client, task_id: str, fields: dict, score: float | None, ttl: int, size: int) -> None:
    """The hooks' _write as it was before the bounded index (git 3a63506)."""
    now = time.time()
    pipe = client.pipeline(transaction=False)
    if score is not None:
        pipe.zadd("tcel:tasks", {task_id: score}, nx=True)
        pipe.zremrangebyscore("tcel:tasks", "-inf", now - ttl)
        pipe.zremrangebyrank("tcel:tasks", 0, -size - 1)
        pipe.expire("tcel:tasks", ttl)
    pipe.hset("tcel:task:" + task_id, mapping=fields)
    pipe.expire("tcel:task:" + task_id, ttl)
    pipe.execute()


def now_(client, module, task_id: str, fields: dict, score: float | None, ttl: int, size: int) -> None:
    """The hooks' _write as it is now."""
    now = time.time()
    module._run(client, lambda pipe: module._index(pipe, task_id, fields, score, now - ttl, size, ttl))


def one_round(write, client, tasks: int) -> float:
    """Seconds a task for `tasks` tasks' three writes, after the index was filled."""
    start = time.perf_counter()
    for _ in range(tasks):
        task_id = str(uuid.uuid4())
        received = time.time()
        write(
            client, task_id, {"name": "tasks.tsum", "args": "[[1, 2]]", "kwargs": "{}", "received": received}, received
        )
        write(client, task_id, {"started": time.time(), "worker": "celery@worker-1"}, None)
        write(client, task_id, {"finished": time.time()}, None)
    return (time.perf_counter() - start) / tasks


def main() -> None:
    import redis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=10_000, help="the index's size (the hooks' MAX_TASKS)")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.url)
    module = hooks()
    ways = {
        "before": lambda c, i, f, s: before(c, i, f, s, 86400, args.size),
        "now": lambda c, i, f, s: now_(c, module, i, f, s, 86400, args.size),
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    keys: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, write in ways.items():
            client.flushdb()
            one_round(write, client, args.size)  # fill the index first: the trim runs on every task after
            samples[name].append(one_round(write, client, args.tasks) * 1e6)
            keys[name] = client.dbsize()
    client.flushdb()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "redis": client.info("server")["redis_version"],
        "taken": time.strftime("%Y-%m-%dT%H%M%S"),
        "command": f"benchmarks/index_write.py --rounds {args.rounds} --tasks {args.tasks} --size {args.size}",
        "unit": "microseconds a task (its three index writes, one round trip each)",
        "samples": samples,
        "medians": medians,
        "ratio_now_to_before": medians["now"] / medians["before"],
        "keys_after_filling_and_one_round": keys,
        "load_average_at_end": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report['taken']}-index_write.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"medians": medians, "ratio": report["ratio_now_to_before"], "keys": keys}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
