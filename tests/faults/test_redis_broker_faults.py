"""Faults on a Redis broker (`tcel up --broker redis`): what a SIGKILLed worker held comes back after the
visibility timeout and is not lost (duplicates counted), and queued tasks outlive a broker restart through its
append-only file.

On Redis a task a worker has taken but not acked sits in kombu's `unacked` hash; nothing tells the broker the
worker died, so it is handed back to the queue only once the visibility timeout has passed since delivery
(kombu's `restore_visible`, run by the surviving or restarted workers: kombu 5.7 scans on a worker's start, then
every `unacked_restore_interval` x `unacked_restore_throttle` = 10 x 10 s). The stack runs with a 10 s timeout
so the test shows the wait; late acks are what keeps the tasks: without them the same kill loses them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import StackProject, make_project
from tests.faults.conftest import (
    container,
    results,
    runs,
    send,
    send_counted,
    switched_off,
    tally,
    wait_running,
    wait_stored,
    write_fault_project,
)

VISIBILITY = 10  # seconds: the stack's visibility timeout, short so the comeback shows within the test
SENT = 12
SECONDS = 6
CONCURRENCY = 10


@pytest.fixture(scope="module")
def redis_faults(engine, tmp_path_factory) -> Iterator[StackProject]:
    directory = tmp_path_factory.mktemp("redis-faults")
    write_fault_project(directory)
    with make_project(engine, directory) as project:
        project.env.update(TCEL_ADD_DELAY="2", TCEL_VISIBILITY_TIMEOUT=str(VISIBILITY))
        result = project.tcel("up", "--broker", "redis")
        assert result.code == 0, result.stderr
        yield project


@pytest.fixture
def healthy(redis_faults: StackProject) -> Iterator[StackProject]:
    yield redis_faults
    again = redis_faults.tcel("up")
    assert again.code == 0, again.stderr


def kill_the_worker_mid_tasks(stack: StackProject, wait: float) -> tuple[int, int, int, int, float | None]:
    """(in flight at the kill, came back, ran more than once, lost, seconds from the kill until the first task
    the dead worker held started again; None if none did)."""
    expected = send_counted(stack, SENT, SECONDS)
    in_flight = wait_running(stack, list(expected), at_least=CONCURRENCY)
    assert in_flight, "no task started within 30 s"
    container(stack, "worker-1").kill()  # SIGKILL, no warm shutdown: its tasks stay in the unacked hash
    killed = time.monotonic()
    assert stack.tcel("up").code == 0  # brings the worker back
    came_back = None
    deadline = killed + wait
    while came_back is None and time.monotonic() < deadline:
        if any(len(pids) > 1 for pids in runs(stack, in_flight).values()):
            came_back = time.monotonic() - killed
        time.sleep(0.5)
    records = wait_stored(stack, expected, timeout=max(1.0, deadline - time.monotonic()))
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(records, expected)
    return len(in_flight), right, twice, lost, came_back


def test_a_killed_workers_tasks_come_back_after_the_visibility_timeout_and_none_is_lost(healthy) -> None:
    in_flight, right, twice, lost, came_back = kill_the_worker_mid_tasks(healthy, wait=180)
    print(
        f"\nFAULT (Redis broker, visibility timeout {VISIBILITY} s) worker killed mid-task: sent {SENT}, in flight "
        f"at the kill {in_flight}, came back {right}, ran twice {twice}, lost {lost}, first rerun "
        f"{came_back and round(came_back, 1)} s after the kill"
    )
    assert lost == 0
    assert twice <= in_flight
    assert came_back is not None and came_back >= VISIBILITY - SECONDS  # held until the timeout, not at once


def test_without_late_acks_the_same_kill_loses_tasks_on_redis(healthy) -> None:
    with switched_off(healthy, "task_acks_late"):
        in_flight, right, twice, lost, _ = kill_the_worker_mid_tasks(healthy, wait=VISIBILITY + SECONDS + 30)
    print(
        f"\nFAULT (Redis broker, protection off: task_acks_late = False) worker killed mid-task: sent {SENT}, "
        f"in flight at the kill {in_flight}, came back {right}, ran twice {twice}, lost {lost}"
    )
    assert lost > 0 and twice == 0


def test_queued_tasks_survive_a_broker_restart_through_its_append_only_file(healthy) -> None:
    container(healthy, "worker-1").stop(timeout=5)
    ids = send(healthy, 5)
    shown = json.loads(healthy.tcel("status", "--json").stdout)  # exit 11: the worker is stopped
    ready = next(q for q in shown["queues"] if q["name"] == "celery")["ready"]
    assert ready == 5
    time.sleep(1.5)  # appendfsync everysec: what Redis took is on disk within a second
    container(healthy, "broker").restart(timeout=10)
    assert healthy.tcel("up").code == 0  # the worker back, once the broker answers
    records = results(healthy, ids, timeout=60)
    ran = sum(r.get("state") == "SUCCESS" for r in records.values())
    print(f"\nFAULT (Redis broker) restarted with 5 tasks queued: {ran} ran after it")
    assert [records[task_id].get("result") for task_id in ids] == list(range(5))
