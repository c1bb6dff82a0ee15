"""A stack of its own for the fault tests, which kill and restart its parts (the other tests never see it).

Its project is the product's worker files plus, in the test project's copies only, a `counted` task that
records every run (the pid of the pool process running it) in the backend's Redis, so a test counts
executions and not just results; and the switches a test turns off to show that a fault test bites.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO, StackProject, make_project

COUNTED_TASK = '''

@app.task
def counted(n, seconds):
    """Test only: record this run (which pool process ran it) in the backend's Redis, sleep, return n."""
    app.backend.client.rpush(f"fault:runs:{counted.request.id}", os.getpid())
    time.sleep(seconds)
    return n
'''

READY = ("SUCCESS", "FAILURE", "REVOKED")
PROTECTIONS = {"task_acks_late": True, "task_reject_on_worker_lost": True}


def write_celeryconfig(directory: Path, **switches: bool) -> None:
    """The product's celeryconfig.py, then the protections a test may turn off (all on by default)."""
    settings = {**PROTECTIONS, **switches}
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    (directory / "celeryconfig.py").write_text(
        (REPO / "celeryconfig.py").read_text() + "\n# tests/faults: the protections, on unless a test says\n" + lines
    )


def write_fault_project(directory: Path) -> None:
    """The fault stack's project: tcel's worker files, the `counted` task, every protection on."""
    for name in ("Dockerfile", "worker_hooks.py", ".dockerignore", "constraints.txt"):
        shutil.copy(REPO / name, directory / name)
    (directory / "tasks.py").write_text((REPO / "tasks.py").read_text() + COUNTED_TASK)
    write_celeryconfig(directory)


@pytest.fixture(scope="session")
def fault_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    directory = tmp_path_factory.mktemp("faults")
    write_fault_project(directory)
    with make_project(engine, directory) as project:
        project.env["TCEL_ADD_DELAY"] = "2"
        result = project.tcel("up")
        assert result.code == 0, result.stderr
        yield project


@pytest.fixture
def healthy(fault_stack: StackProject) -> Iterator[StackProject]:
    """The fault stack, brought back to health after the test whatever it broke."""
    yield fault_stack
    again = fault_stack.tcel("up")
    assert again.code == 0, again.stderr


@contextmanager
def switched_off(stack: StackProject, *settings: str) -> Iterator[StackProject]:
    """The stack's workers rebuilt with these protections off; rebuilt with all of them on afterwards."""
    write_celeryconfig(stack.directory, **dict.fromkeys(settings, False))
    try:
        rebuilt = stack.tcel("up", "--build")
        assert rebuilt.code == 0, rebuilt.stderr
        yield stack
    finally:
        write_celeryconfig(stack.directory)
        rebuilt = stack.tcel("up", "--build")
        assert rebuilt.code == 0, rebuilt.stderr


def container(stack: StackProject, service: str):
    return stack.engine.containers.get(f"tcel-{stack.name}-{service}")


def queued(stack: StackProject, queue: str = "celery") -> int:
    """Messages in the queue, ready or unacknowledged (the broker's own count)."""
    listed = container(stack, "broker").exec_run(["rabbitmqctl", "-q", "list_queues", "name", "messages"])
    counts = dict(line.split("\t") for line in listed.output.decode().strip().splitlines()[1:] if "\t" in line)
    return int(counts.get(queue, 0))


def backend(stack: StackProject):
    """A Redis client on the stack's backend, through its published port."""
    import redis

    c = stack.connection
    return redis.Redis.from_url(c.backend_url(), socket_timeout=5)


def send(stack: StackProject, count: int, *args: str) -> list[str]:
    """Send `count` tsum tasks (numbers 0..count-1 plus args) through tcel; return their ids in order."""
    ids = []
    for n in range(count):
        result = stack.tcel("tsum", str(n), *args, "--quiet")
        assert result.code == 0, result.stderr
        ids.append(result.stdout.strip())
    return ids


def send_counted(stack: StackProject, count: int, seconds: float) -> dict[str, int]:
    """Send `count` counted tasks at once, through Celery's own client (a `tcel` process per task takes
    longer than the tasks run on a loaded machine); return {task id: its expected result}."""
    from celery import Celery

    c = stack.connection
    client = Celery(set_as_current=False, broker=c.broker_url(), backend=c.backend_url())
    try:
        return {client.send_task("tasks.counted", [n, seconds]).id: n for n in range(count)}
    finally:
        client.close()


def runs(stack: StackProject, ids: list[str]) -> dict[str, list[int]]:
    """Each task's runs so far: the pids of the pool processes that started it."""
    with backend(stack) as client:
        pipe = client.pipeline()
        for task_id in ids:
            pipe.lrange(f"fault:runs:{task_id}", 0, -1)
        return {task_id: [int(pid) for pid in pids] for task_id, pids in zip(ids, pipe.execute(), strict=False)}


def stored(stack: StackProject, ids: list[str]) -> dict[str, dict]:
    """Each task's result record as Celery stored it in the backend ({} when there is none)."""
    with backend(stack) as client:
        metas = client.mget([f"celery-task-meta-{task_id}" for task_id in ids])
    return {task_id: json.loads(meta) if meta else {} for task_id, meta in zip(ids, metas, strict=False)}


def wait_stored(stack: StackProject, expected: dict[str, object], timeout: float) -> dict[str, dict]:
    """Records of the tasks, once all are ready (succeeded or failed) or the timeout passed."""
    deadline = time.monotonic() + timeout
    while True:
        records = stored(stack, list(expected))
        if all(r.get("status") in READY for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(0.3)


def wait_running(stack: StackProject, ids: list[str], at_least: int, timeout: float = 30) -> list[str]:
    """Wait until at least `at_least` of the tasks have started and not finished; return those."""
    deadline = time.monotonic() + timeout
    while True:
        started, done = runs(stack, ids), stored(stack, ids)
        running = [t for t in ids if started[t] and done[t].get("status") != "SUCCESS"]
        if len(running) >= at_least or time.monotonic() > deadline:
            return running
        time.sleep(0.1)


def results(stack: StackProject, ids: list[str], timeout: float = 120) -> dict[str, dict]:
    """Wait until every task is ready (or the timeout passes); return each one's record, as `tcel result`
    shows it."""
    deadline = time.monotonic() + timeout
    records: dict[str, dict] = {}
    while True:
        for task_id in ids:
            if records.get(task_id, {}).get("state") not in READY:
                shown = stack.tcel("result", task_id, "--json")
                records[task_id] = json.loads(shown.stdout) if shown.stdout else {"state": "UNKNOWN"}
        if all(r["state"] == "SUCCESS" for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def tally(records: dict[str, dict], expected: dict[str, object]) -> tuple[int, int]:
    """(came back right, lost): a task is lost unless it has exactly its expected result."""
    right = sum(
        1
        for task_id, value in expected.items()
        if records[task_id].get("result") == value
        and records[task_id].get("state", records[task_id].get("status")) == "SUCCESS"
    )
    return right, len(expected) - right
