"""SIGKILL of the worker container while tasks run: every task still gets its result, at least once.

The counted task records each of its runs, so the test shows how many tasks were in flight at the kill and
how many ran twice (late acks redeliver what a dead worker was running: duplicates are expected, loss is a
failure). The same fault with late acks switched off must lose tasks, or the test proves nothing."""

from tests.faults.conftest import container, runs, send_counted, switched_off, tally, wait_running, wait_stored

SENT = 12
SECONDS = 8
CONCURRENCY = 10  # the image's default: this many run at once, the rest wait in the queue


def kill_the_worker_mid_tasks(stack, wait: float) -> tuple[int, int, int, int]:
    """(in flight at the kill, came back, ran more than once, lost)."""
    expected = send_counted(stack, SENT, SECONDS)
    in_flight = wait_running(stack, list(expected), at_least=CONCURRENCY)
    assert in_flight, "no task started within 30 s"
    container(stack, "worker-1").kill()  # SIGKILL, no warm shutdown
    assert stack.tcel("up").code == 0  # brings the worker back
    records = wait_stored(stack, expected, timeout=wait)
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(records, expected)
    return len(in_flight), right, twice, lost


def test_worker_killed_mid_task_loses_nothing(healthy) -> None:
    in_flight, right, twice, lost = kill_the_worker_mid_tasks(healthy, wait=120)
    print(
        f"\nFAULT worker killed mid-task: sent {SENT}, in flight at the kill {in_flight}, came back {right}, "
        f"ran twice {twice}, lost {lost}"
    )
    assert lost == 0
    assert twice <= in_flight  # only what the dead worker was running runs again


def test_without_late_acks_the_same_kill_loses_tasks(healthy) -> None:
    with switched_off(healthy, "task_acks_late"):
        in_flight, right, twice, lost = kill_the_worker_mid_tasks(healthy, wait=SECONDS + 20)
    print(
        f"\nFAULT (protection off: task_acks_late = False) worker killed mid-task: sent {SENT}, "
        f"in flight at the kill {in_flight}, came back {right}, ran twice {twice}, lost {lost}"
    )
    assert lost > 0 and twice == 0


def test_a_killed_worker_comes_back_by_itself(healthy) -> None:
    """No `tcel up`: the container's restart policy brings the worker back, and `status` counts the restart."""
    import json
    import os
    import signal
    import time

    # a crash, not `docker kill` (which the engine counts as a stop by hand and never restarts): SIGKILL of the
    # container's first process, from this machine
    os.kill(container(healthy, "worker-1").attrs["State"]["Pid"], signal.SIGKILL)
    deadline, row = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        status = json.loads(healthy.tcel("status", "--json").stdout)  # exit 11 while a service is not ready
        row = next(s for s in status["services"] if s["name"].endswith("-worker-1"))
        if row["state"] == "running" and row["ready"] and row["restarts"]:
            break
        time.sleep(1)
    print(f"\nFAULT worker SIGKILLed, not brought up by tcel: {row}")
    assert row is not None and row["state"] == "running" and row["ready"], row
    assert row["restarts"] >= 1
