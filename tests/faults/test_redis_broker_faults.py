"""Faults on a Redis broker (`tcel up --broker redis`): what a SIGKILLed worker held comes back after the
visibility timeout and is not lost (duplicates counted), queued tasks outlive a broker restart through its
append-only file, and a worker cut off from the network while tasks are sent consumes them once reconnected.

On Redis a task a worker has taken but not acked sits in kombu's `unacked` hash; nothing tells the broker the
worker died, so it is handed back to the queue only once the visibility timeout has passed since delivery
(kombu's `restore_visible`, run by the surviving or restarted workers: kombu 5.7 scans on a worker's start, then
every `unacked_restore_interval` x `unacked_restore_throttle` = 10 x 10 s). The stack runs with a 10 s timeout
so the test shows the wait; late acks are what keeps the tasks: without them the same kill loses them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.conftest import StackProject, make_project
from tests.faults.conftest import (
    container,
    results,
    runs,
    send,
    send_counted,
    stored,
    switched_off,
    tally,
    wait_running,
    wait_stored,
    write_celeryconfig,
    write_fault_project,
)
from tests.faults.test_worker_cut_off import address, reconnect_elsewhere

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
    # what an earlier test's killed worker had reserved comes back to the queue late (the visibility timeout,
    # then kombu's next sweep): emptied first, so that the count below is this test's
    assert healthy.tcel("purge", "--yes").code == 0
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


# The network cut: the worker, idle, is disconnected from the stack's network; tasks are sent meanwhile (they wait
# in the queue: the BRPOP the worker had waiting ends on Redis's side within kombu's brpop_timeout, 1 s); it is
# connected again on another address (test_worker_cut_off.reconnect_elsewhere: its old connections then never
# hear from either end again, as when a host moves), and must consume them by itself.
CUT = 8
CUT_TASKS = 6
RECOVERY = 60  # seconds from the reconnection: a command on a silent connection fails after 10 s (socket_timeout),
# then Celery connects again (every 2, 4, 6... s while the network is away)


@dataclass
class Cut:
    stored_while_cut: int
    recovered_after: float | None  # seconds from the reconnection until every result was stored; None: not in time
    addresses: tuple[str, str]
    right: int
    lost: int


def cut_off_while_tasks_are_sent(stack: StackProject) -> Cut:
    worker, network = container(stack, "worker-1"), stack.networks()[0]
    before, cut_at = address(worker, network.name), int(time.time())
    network.disconnect(worker)
    try:
        time.sleep(3)
        expected = send_counted(stack, CUT_TASKS, 1)
        time.sleep(CUT)
        while_cut = sum(r.get("status") == "SUCCESS" for r in stored(stack, list(expected)).values())
    finally:
        reconnect_elsewhere(stack, worker, network)
    reconnected, after = time.monotonic(), address(worker, network.name)
    records = wait_stored(stack, expected, timeout=RECOVERY)
    recovered = tally(records, expected)[1] == 0
    took = time.monotonic() - reconnected if recovered else None
    if not recovered:  # recover as an operator would, and count what was lost
        lines = worker.logs(since=cut_at).decode(errors="replace").splitlines()
        print("\n  worker-1 log, after the cut:\n    " + "\n    ".join(line[:220] for line in lines[-120:]))
        worker.restart(timeout=10)
        records = wait_stored(stack, expected, timeout=RECOVERY + VISIBILITY)
    right, lost = tally(records, expected)
    return Cut(while_cut, took, (before, after), right, lost)


@contextmanager
def transport_options(stack: StackProject, options: str) -> Iterator[StackProject]:
    """The stack's workers rebuilt with the project's own broker_transport_options; tcel's back afterwards."""
    write_celeryconfig(stack.directory)
    with (stack.directory / "celeryconfig.py").open("a") as config:
        config.write(f"broker_transport_options = {options}\n")
    try:
        rebuilt = stack.tcel("up", "--build")
        assert rebuilt.code == 0, rebuilt.stderr
        yield stack
    finally:
        write_celeryconfig(stack.directory)
        rebuilt = stack.tcel("up", "--build")
        assert rebuilt.code == 0, rebuilt.stderr


def test_a_worker_cut_off_while_tasks_are_sent_consumes_them_once_reconnected(healthy) -> None:
    cut = cut_off_while_tasks_are_sent(healthy)
    print(
        f"\nFAULT (Redis broker) worker cut off for {CUT} s while {CUT_TASKS} tasks were sent: stored while cut off "
        f"{cut.stored_while_cut}, all stored {cut.recovered_after and round(cut.recovered_after, 1)} s after the "
        f"reconnection, came back {cut.right}, lost {cut.lost} (address {' -> '.join(cut.addresses)})"
    )
    assert cut.addresses[0] != cut.addresses[1], "the worker came back on its old address: not the fault meant"
    assert cut.stored_while_cut == 0  # the cut was real: nothing ran meanwhile
    assert cut.recovered_after is not None, f"the worker did not consume again within {RECOVERY} s"
    assert cut.lost == 0


def test_with_kombus_default_socket_timeout_the_cut_off_worker_does_not_recover(healthy) -> None:
    with transport_options(healthy, f"{{'visibility_timeout': {VISIBILITY}, 'socket_timeout': None}}"):
        cut = cut_off_while_tasks_are_sent(healthy)
    print(
        f"\nFAULT (Redis broker, protection off: socket_timeout None, kombu's default) worker cut off for {CUT} s "
        f"while {CUT_TASKS} tasks were sent: recovered by itself within {RECOVERY} s: "
        f"{cut.recovered_after is not None}; after an operator's restart came back {cut.right}, lost {cut.lost} "
        f"(address {' -> '.join(cut.addresses)})"
    )
    assert cut.addresses[0] != cut.addresses[1], "the worker came back on its old address: the cut proves nothing"
    assert cut.recovered_after is None
    assert cut.lost == 0  # the tasks only waited in the queue
