"""A bounded backend and the workers' pool limits on the real stack (issue 24): the index's trim deletes the
records it drops, so the backend's keys and memory stay flat once the index is full; the index script behaves as
its plain-Python model on a real Redis; the workers run with --max-tasks-per-child and report it.

The index is made small for the test (TCEL_INDEX_MAX_TASKS=INDEX_SIZE, passed to the workers) so that a few
thousand tasks overflow it many times, where the issue's 200,000 tasks would take minutes of worker time; the
tasks are sent without results (Celery's `ignore_result`), so that what stays in Redis is tcel's index alone."""

from __future__ import annotations

import contextlib
import random
import shutil
import time
from collections.abc import Iterator

import pytest

from celery_cli.names import INDEX_KEY, INDEX_SCRIPT, INFO_KEY
from tests.conftest import REPO, StackProject, make_project

INDEX_SIZE = 300
ROUND = 3_000  # tasks a round: ten times the index
ROUNDS = 4
SETTLE = 180


@pytest.fixture(scope="module")
def bounded(engine, tmp_path_factory) -> Iterator[StackProject]:
    """The seed's stack with a small index and a pool limit."""
    directory = tmp_path_factory.mktemp("bounded")
    for name in ("tasks.py", "celeryconfig.py", "worker_hooks.py", "Dockerfile", ".dockerignore", "constraints.txt"):
        shutil.copy(REPO / name, directory / name)
    with make_project(engine, directory) as project:
        project.env["TCEL_INDEX_MAX_TASKS"] = str(INDEX_SIZE)
        result = project.tcel("up", "--max-tasks-per-child", "50", timeout=600)
        assert result.code == 0, result.stderr
        try:
            yield project
        finally:
            images = {
                c.attrs["Config"]["Image"] for c in project.containers() if c.labels.get("io.tcel.service") == "worker"
            }
            project.remove_everything()
            for image in images:
                with contextlib.suppress(Exception):  # another stack may use it
                    project.engine.images.remove(image)


def backend(project: StackProject):
    import redis

    return redis.Redis.from_url(project.connection.backend_url(), decode_responses=True)


def test_workers_run_with_the_pool_limit_given_to_up_and_scale_changes_it(bounded) -> None:
    stats = bounded.tcel_json("inspect", "stats")["workers"]["celery@worker-1"]
    assert stats["pool"]["max-tasks-per-child"] == 50
    worker = bounded.tcel_json("status")["workers"][0]
    assert worker["max_tasks_per_child"] == 50 and worker["peak_rss_kib"] > 10_000
    kept = bounded.tcel("scale", "1")  # the limit is kept: nothing to replace
    assert kept.code == 0, kept.stderr
    assert bounded.tcel_json("inspect", "stats")["workers"]["celery@worker-1"]["pool"]["max-tasks-per-child"] == 50
    cleared = bounded.tcel("scale", "1", "--max-tasks-per-child", "0")
    assert cleared.code == 0, cleared.stderr
    stats = bounded.tcel_json("inspect", "stats")["workers"]["celery@worker-1"]
    assert stats["pool"]["max-tasks-per-child"] in ("N/A", None, 0)


def send(project: StackProject, count: int) -> None:
    """`count` tasks from a plain Celery client, results ignored."""
    from celery import Celery

    app = Celery("bounded-test", broker=project.connection.broker_url(), set_as_current=False)
    try:
        with app.producer_or_acquire() as producer:
            for n in range(count):
                app.send_task("tasks.tsum", ([n, 1],), ignore_result=True, producer=producer)
    finally:
        app.close()


def processed(project: StackProject) -> int:
    return sum(w["processed"] or 0 for w in project.tcel_json("status")["workers"])


def wait_processed(project: StackProject, total: int) -> None:
    deadline = time.monotonic() + SETTLE
    while (done := processed(project)) < total:
        assert time.monotonic() < deadline, f"{done} of {total} tasks processed in {SETTLE} s"
        time.sleep(1)
    time.sleep(1)  # the last tasks' postrun hooks


def measure(client) -> dict[str, int]:
    records = sum(1 for _ in client.scan_iter(match=INFO_KEY + "*", count=1000))
    return {
        "keys": client.dbsize(),
        "records": records,
        "indexed": client.zcard(INDEX_KEY),
        "memory": int(client.info("memory")["used_memory"]),
    }


def test_the_backend_stays_flat_once_the_index_is_full(bounded) -> None:
    client = backend(bounded)
    base = processed(bounded)
    samples = []
    for done in range(1, ROUNDS + 1):
        send(bounded, ROUND)
        wait_processed(bounded, base + done * ROUND)
        samples.append(measure(client))
    print("backend after each round of", ROUND, "tasks:", samples)
    first, last = samples[0], samples[-1]
    assert last["indexed"] == INDEX_SIZE and last["records"] <= INDEX_SIZE
    assert last["keys"] <= first["keys"] + 5, samples  # a few keys of Celery's own (its control replies...)
    assert last["memory"] - first["memory"] < 512 * 1024, samples
    status = bounded.tcel_json("status")["backend"]
    assert status["indexed_tasks"] == INDEX_SIZE and status["keys"] == client.dbsize()


class Model:
    """What INDEX_SCRIPT does, in plain Python: the index, each task's record, and which tasks have a chunk list."""

    def __init__(self) -> None:
        self.index: dict[str, float] = {}
        self.records: dict[str, dict[str, str]] = {}
        self.jobs: set[str] = set()

    def write(self, task_id: str, score: float | None, oldest: float, size: int, fields: dict[str, str]) -> int:
        if score is not None:
            self.index.setdefault(task_id, score)
            by_age = sorted((s, i) for i, s in self.index.items() if s < oldest)[:100]
            self.drop([i for _, i in by_age])
            over = len(self.index) - size
            if over > 0:
                self.drop([i for _, i in sorted((s, i) for i, s in self.index.items())[: min(over, 100)]])
        if task_id not in self.index:
            return 0
        self.records.setdefault(task_id, {}).update(fields)
        return 1

    def drop(self, ids: list[str]) -> None:
        for task_id in ids:
            del self.index[task_id]
            self.records.pop(task_id, None)
            self.jobs.discard(task_id)


def test_the_index_script_does_what_its_python_model_does_on_a_real_redis(bounded) -> None:
    client = backend(bounded)
    index, info, job = "tcel-test:tasks", "tcel-test:task:", "tcel-test:job:"
    script = client.register_script(INDEX_SCRIPT)
    model, rng = Model(), random.Random(24)
    ids = [f"t{n}" for n in range(400)]
    try:
        for step in range(3_000):
            task_id = rng.choice(ids)
            score = float(rng.randrange(1_000)) if rng.random() < 0.6 else None
            oldest = float(rng.choice([0, 0, 0, step // 6]))
            size = rng.choice([5, 20, 1_000])
            fields = {rng.choice("abc"): str(step)}
            if score is not None and rng.random() < 0.1:
                client.rpush(job + task_id, "chunk")
                model.jobs.add(task_id)
            args = [task_id, "" if score is None else score, oldest, size, 3600, info, job]
            got = script(keys=[index, info + task_id], args=[*args, *sum(fields.items(), ())])
            assert got == model.write(task_id, score, oldest, size, fields), step
            if step % 50 == 0 or step > 2_950:
                assert client.zrange(index, 0, -1, withscores=True) == sorted(
                    model.index.items(), key=lambda item: (item[1], item[0])
                ), step
                stored = {i: client.hgetall(info + i) for i in ids}
                assert {i: r for i, r in stored.items() if r} == model.records, step
                jobs = {i for i in ids if client.exists(job + i)}
                assert jobs == model.jobs, step
                assert all(0 < client.ttl(info + i) <= 3600 for i in model.records), step
    finally:
        client.delete(index, *(info + i for i in ids), *(job + i for i in ids))
