"""The worker is cut off from the stack's network (`docker network disconnect`) mid-task and reconnected:
its tasks' results all come back, nothing is lost, and the worker consumes again by itself.

What happens (Celery 5.7, RabbitMQ 4.0 stand-in): the worker's broker connection drops during the cut, the
tasks finish and store their results but cannot be acknowledged, and the broker requeues them. When the
worker reconnects, the broker still holds its old connection (it notices only at the heartbeat timeout), with
the worker's exclusive control queue `celery@worker-1.celery.pidbox`: when the worker declares it again before
the broker lets the old connection go, it is refused (RESOURCE_LOCKED) and its consumer stops until it tries
again after the broker let go. With Celery's default heartbeat (120 s asked, 60 s granted) that took minutes,
and the worker had not recovered within 30 s in 3 of 5 runs; celeryconfig.py's `broker_heartbeat = 10` makes
the broker drop the stale connection within about 20 s (recovered in 3 of 3 runs since)."""

import time

from tests.faults.conftest import container, runs, send_counted, tally, wait_running, wait_stored

SENT = 6
SECONDS = 6
CUT = 8  # longer than what is left of the running tasks: they end while the worker is cut off
RECOVERY = 30  # seconds the worker gets to consume its requeued tasks again by itself


def test_a_worker_cut_off_mid_task_and_reconnected_loses_nothing(healthy) -> None:
    stack = healthy
    expected = send_counted(stack, SENT, SECONDS)
    in_flight = wait_running(stack, list(expected), at_least=SENT)
    assert in_flight, "no task started within 30 s"
    worker = container(stack, "worker-1")
    network = stack.networks()[0]
    network.disconnect(worker)
    try:
        time.sleep(CUT)
    finally:
        network.connect(worker, aliases=["worker-1"])
    stored = sum(1 for r in wait_stored(stack, expected, timeout=60).values() if r.get("status") == "SUCCESS")
    recovered = settled(stack, RECOVERY)
    if not recovered:  # leave the shared stack working for the next tests, then fail
        container(stack, "broker").exec_run(["rabbitmqctl", "close_all_connections", "fault test: stale"])
        worker.restart(timeout=10)
        settled(stack, 90)
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(wait_stored(stack, expected, timeout=SECONDS + 30), expected)
    print(f"\nFAULT worker cut off from the network for {CUT} s mid-task: sent {SENT}, in flight at the cut "
          f"{len(in_flight)}, results stored {stored}, recovered by itself within {RECOVERY} s: {recovered}, "
          f"came back {right}, ran twice {twice}, lost {lost}")
    assert lost == 0
    assert recovered, f"the worker did not consume again within {RECOVERY} s of being reconnected"


def queued(stack) -> int:
    """Messages in the `celery` queue, ready or unacknowledged (the broker's own count)."""
    listed = container(stack, "broker").exec_run(["rabbitmqctl", "-q", "list_queues", "name", "messages"])
    counts = dict(line.split("\t") for line in listed.output.decode().strip().splitlines()[1:] if "\t" in line)
    return int(counts.get("celery", 0))


def settled(stack, timeout: float) -> bool:
    """Whether, within the timeout, the queue is empty and `tcel up` finds the worker connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queued(stack) == 0 and stack.tcel("up").code == 0:
            return True
        time.sleep(1)
    return False
