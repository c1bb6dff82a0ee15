"""The whole-stack view on a real stack: status parts, degraded parts, watch, logs, scale, purge, revoke."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import Run, logs_followed_until
from tests.integration.test_tasks import wait_for_state


@contextmanager
def stopped(stack, service: str) -> Iterator[None]:
    """Stop one container of the shared stack; `tcel up` brings it back afterwards, whatever happens."""
    stack.engine.containers.get(f"tcel-{stack.name}-{service}").stop(timeout=10)
    try:
        yield
    finally:
        assert stack.tcel("up").code == 0


def plain_client(stack):
    from celery import Celery

    c = stack.connection
    return Celery("plain", broker=c.broker_url(), backend=c.backend_url())


def test_status_shows_workers_queues_backend_and_tasks(stack) -> None:
    stack.tcel("tsum", "1", "--wait")
    deadline = time.monotonic() + 10
    while True:  # the worker may still be starting to consume
        view = stack.tcel_json("status")
        consumers = {q["name"]: q["consumers"] for q in view["queues"]}
        if consumers.get("celery") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert view["healthy"] is True and view["errors"] == {}
    worker = view["workers"][0]
    assert worker["name"] == "celery@worker-1" and worker["answering"] is True
    assert worker["pool"] >= 1 and worker["processed"] >= 1
    assert {"tasks.add", "tasks.tsum"} <= set(worker["registered"])
    assert consumers["celery"] >= 1
    assert view["backend"]["version"] and view["backend"]["indexed_tasks"] >= 1
    assert 1 <= len(view["tasks"]) <= 10
    table = stack.tcel("status")
    assert table.code == 0
    for title in ("workers", "queues", "backend", "last "):
        assert title in table.stdout


def test_status_with_a_worker_stopped_shows_the_rest_and_says_degraded(stack) -> None:
    with stopped(stack, "worker-1"):
        result = stack.tcel("status", "--json")
        assert result.code == 11
        view = json.loads(result.stdout)
        assert view["healthy"] is False
        assert [w["answering"] for w in view["workers"]] == [False]
        assert {s["service"]: s["state"] for s in view["services"]}["worker"] == "exited"
        assert view["backend"] is not None and "queues" not in view["errors"]


def test_status_with_the_broker_stopped_still_shows_containers_backend_and_tasks(stack) -> None:
    with stopped(stack, "broker"):
        started = time.monotonic()
        result = stack.tcel("status")
        assert time.monotonic() - started < 10
        assert result.code == 11
        assert "queues: unavailable" in result.stdout and "workers: unavailable" in result.stdout
        assert "backend" in result.stdout and "exited" in result.stdout
        assert "Traceback" not in result.stderr


def test_watch_renders_frames_with_a_completion_rate(stack) -> None:
    plain = stack.tcel("watch", "--count", "2", "--interval", "0.3")
    assert plain.code == 0
    assert plain.stdout.count("stack ") >= 2 and plain.stdout.count("workers") >= 2
    frames = [
        json.loads(line) for line in stack.tcel("watch", "-n", "2", "--interval", "0.3", "--json").stdout.splitlines()
    ]
    assert len(frames) == 2
    assert frames[0]["tasks_per_second"] is None and frames[1]["tasks_per_second"] >= 0


def test_logs_show_the_workers_ready_line(stack) -> None:
    result = stack.tcel("logs", "worker")
    assert result.code == 0
    assert "worker-1" in result.stdout and "celery@worker-1 ready." in result.stdout
    every = stack.tcel("logs", "--tail", "5")
    sources = {line.split("|")[0].strip() for line in every.stdout.splitlines() if "|" in line}
    assert {"broker", "backend", "worker-1"} <= sources
    lines = [json.loads(line) for line in stack.tcel("logs", "backend", "--json").stdout.splitlines()]
    assert lines and {line["service"] for line in lines} == {"backend"}


def test_logs_follow_prints_a_task_s_lines_as_they_come_and_ends_on_ctrl_c(stack) -> None:
    def send() -> str:
        done = stack.tcel("tsum", "40", "2", "--json")
        assert done.code == 0, done.stderr
        return json.loads(done.stdout)["id"]

    def done(line: str, ids: list[str]) -> bool:
        return "succeeded" in line and any(task in line for task in ids)

    sent, seen, _ = logs_followed_until(stack, send, done)
    assert any(line.startswith("worker-1") and any(task in line for task in sent) for line in seen), seen


def test_scale_one_three_one_leaves_exactly_those_workers(stack) -> None:
    def workers() -> list[str]:
        return sorted(c.name for c in stack.containers() if c.labels["io.tcel.service"] == "worker")

    others = sorted(c.id for c in stack.containers() if c.labels["io.tcel.service"] != "worker")
    try:
        up = stack.tcel_json("scale", "3")
        assert up["ready"] is True
        assert workers() == [f"tcel-{stack.name}-worker-{n}" for n in (1, 2, 3)]
        answering = [w for w in stack.tcel_json("status")["workers"] if w["answering"]]
        assert len(answering) == 3
    finally:
        assert stack.tcel("scale", "1").code == 0
    assert workers() == [f"tcel-{stack.name}-worker-1"]
    assert sorted(c.id for c in stack.containers() if c.labels["io.tcel.service"] != "worker") == others


def at_a_terminal(stack, args: list[str], answer: str) -> Run:
    """Run tcel with a pseudo-terminal as stdin and stderr, typing `answer` at its question."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1", **stack.env}
    with subprocess.Popen(
        [sys.executable, "-m", "celery_cli", *args, "--project-name", stack.name],
        cwd=stack.directory,
        env=env,
        stdin=follower,
        stderr=follower,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        os.close(follower)
        seen = b""
        while b"?" not in seen:
            seen += os.read(leader, 1024)
        os.write(leader, answer.encode() + b"\n")
        stdout, _ = child.communicate(timeout=60)
        try:
            while chunk := os.read(leader, 1024):
                seen += chunk
        except OSError:  # the child closed the terminal
            pass
    os.close(leader)
    return Run(child.returncode, stdout, seen.decode(errors="replace"))


def test_purge_removes_what_was_queued_and_says_how_many(stack) -> None:
    with stopped(stack, "worker-1"):
        assert stack.tcel("purge", "--yes").code == 0  # start from an empty queue
        ids = [stack.tcel("tsum", str(n), "--quiet").stdout.strip() for n in range(3)]
        refused = stack.tcel("purge")  # no terminal and no --yes: refuse
        assert refused.code == 2 and "--yes" in refused.stderr
        declined = at_a_terminal(stack, ["purge"], answer="n")
        assert declined.code == 1 and "Delete 3 queued task(s)?" in declined.stderr, declined.stderr
        assert "nothing purged" in declined.stderr
        assert stack.tcel_json("purge", "--yes")["purged"] == 3
    time.sleep(1)
    assert all(stack.tcel_json("result", task_id)["state"] == "PENDING" for task_id in ids)


def test_revoke_of_a_queued_task_means_it_never_runs(stack) -> None:
    client = plain_client(stack)
    try:
        busy = [client.send_task("tasks.add", args=[0, n]) for n in range(40)]  # 4 s of work for 10 processes
        task_id = stack.tcel("tsum", "42", "--quiet").stdout.strip()
        revoked = stack.tcel_json("revoke", task_id)
        assert revoked["revoked"] is True and revoked["workers"] == ["celery@worker-1"]
        assert [r.get(timeout=60) for r in busy] == list(range(40))
    finally:
        client.close()
    record = wait_for_state(stack, task_id, "REVOKED")
    assert record["state"] == "REVOKED" and record["result"] is None
    assert record["started"] is None, "a revoked task must never start"


def test_commands_close_their_broker_connections(stack) -> None:
    """Each command ends its AMQP connections with a close, so the broker's log stays free of tcel's noise."""
    broker = stack.engine.containers.get(f"tcel-{stack.name}-broker")
    import uuid

    for command in (
        ["status"],
        ["watch", "-n", "1"],
        ["revoke", str(uuid.uuid4())],
        ["bench", "-n", "20"],
        ["tsum", "1", "--wait"],
    ):
        since = int(time.time())
        assert stack.tcel(*command).code == 0
        time.sleep(1.1)  # the broker logs a dropped connection as soon as it notices
        log = broker.logs(since=since).decode(errors="replace")
        assert "accepting AMQP connection" in log
        assert "client unexpectedly closed TCP connection" not in log, f"tcel {' '.join(command)} left one"


def test_status_json_says_which_engine_and_has_the_swarm_fields_empty(stack) -> None:
    """The same keys as on Swarm (tests/swarm/test_swarm_stack.py compares them): what only Swarm knows (the
    node, the replica counts) is null here."""
    view = json.loads(stack.tcel("status", "--json").stdout)
    assert view["engine"] == "containers"
    assert {(s["node"], s["replicas"]) for s in view["services"]} == {(None, None)}
