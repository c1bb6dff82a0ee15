"""The worker is cut off from the stack's network (`docker network disconnect`) mid-task and reconnected:
its tasks' results all come back, nothing is lost, and the worker consumes again by itself.

What happens (Celery 5.7, RabbitMQ 4.0 stand-in): the worker's broker connection drops during the cut, the
tasks finish and store their results but cannot be acknowledged, and the broker requeues them. When the
worker reconnects, the broker still holds its old connection (it notices only at the heartbeat timeout), with
the tasks still unacknowledged on it and the worker's exclusive control queue `celery@worker-1.celery.pidbox`:
when the worker declares it again before the broker lets the old connection go, it is refused
(RESOURCE_LOCKED) and its consumer stops until it tries again after the broker let go. With Celery's default
heartbeat (120 s asked, 60 s granted) that took minutes, and the worker had not recovered within 30 s in 3 of
5 runs; celeryconfig.py's `broker_heartbeat = 10` makes the broker drop the stale connection within about
20 s (recovered in 3 of 3 runs since).

The bite: the same cut with the heartbeat switched off (`broker_heartbeat = 0`: no heartbeats either way).
Celery's default heartbeat would only be flaky here (the broker's 60 s timeout lands inside or outside the
test's bound from run to run, as the 2 of 5 above did), so the test switches heartbeats off altogether, which
is deterministic: nothing then tells the broker that the old connection is dead. The worker comes back on a
new address (Docker does not hand the address just released to the same container again; the test checks),
so no packet of the old connection, not even its close, ever reaches the broker again, and RabbitMQ sets no
TCP keepalive on its side: the broker holds the stale connection, and with it the tasks unacknowledged and
the control queue, far longer than the test waits (until TCP gives up writing to it, about 15 minutes, and
only if it writes). The test asserts that the queue still holds the in-flight tasks at the end of the same
bound the protected test is given, then recovers as an operator would and checks that nothing was lost.
"""

import time
from dataclasses import dataclass

from tests.faults.conftest import (
    container,
    queued,
    runs,
    send_counted,
    switched_off,
    tally,
    wait_running,
    wait_stored,
)

SENT = 6
SECONDS = 6
CUT = 8  # longer than what is left of the running tasks: they end while the worker is cut off
RECOVERY = 30  # seconds the worker gets to consume its requeued tasks again by itself


@dataclass
class Cut:
    in_flight: int
    stored: int  # results stored before the recovery bound starts
    recovered: bool  # the worker consumed again by itself within RECOVERY
    held: int  # messages the queue still held at the end of that bound (ready or unacknowledged)
    addresses: tuple[str, str]  # the worker's address on the stack's network before and after the cut
    right: int
    twice: int
    lost: int


def cut_the_worker_off_mid_tasks(stack, stored_wait: float) -> Cut:
    expected = send_counted(stack, SENT, SECONDS)
    in_flight = wait_running(stack, list(expected), at_least=SENT)
    assert in_flight, "no task started within 30 s"
    worker = container(stack, "worker-1")
    network = stack.networks()[0]
    before = address(worker, network.name)
    network.disconnect(worker)
    try:
        time.sleep(CUT)
    finally:
        network.connect(worker, aliases=["worker-1"])
    after = address(worker, network.name)
    stored = sum(1 for r in wait_stored(stack, expected, timeout=stored_wait).values() if r.get("status") == "SUCCESS")
    recovered = settled(stack, RECOVERY)
    held = 0 if recovered else queued(stack)
    if not recovered:  # recover as an operator would, and leave the shared stack working for the next tests
        container(stack, "broker").exec_run(["rabbitmqctl", "close_all_connections", "fault test: stale"])
        worker.restart(timeout=10)
        settled(stack, 90)
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(wait_stored(stack, expected, timeout=SECONDS + 30), expected)
    return Cut(len(in_flight), stored, recovered, held, (before, after), right, twice, lost)


def test_a_worker_cut_off_mid_task_and_reconnected_loses_nothing(healthy) -> None:
    cut = cut_the_worker_off_mid_tasks(healthy, stored_wait=60)
    print(f"\nFAULT worker cut off from the network for {CUT} s mid-task: sent {SENT}, in flight at the cut "
          f"{cut.in_flight}, results stored {cut.stored}, recovered by itself within {RECOVERY} s: {cut.recovered}, "
          f"came back {cut.right}, ran twice {cut.twice}, lost {cut.lost} (address {' -> '.join(cut.addresses)})")
    assert cut.lost == 0
    assert cut.recovered, f"the worker did not consume again within {RECOVERY} s of being reconnected"


def test_without_heartbeats_the_broker_keeps_the_cut_off_worker_s_tasks(healthy) -> None:
    with switched_off(healthy, "broker_heartbeat"):
        cut = cut_the_worker_off_mid_tasks(healthy, stored_wait=SECONDS + 10)
    print(f"\nFAULT (protection off: broker_heartbeat = 0) worker cut off from the network for {CUT} s mid-task: "
          f"sent {SENT}, in flight at the cut {cut.in_flight}, recovered by itself within {RECOVERY} s: "
          f"{cut.recovered}, still held by the broker then {cut.held}; after an operator's recovery came back "
          f"{cut.right}, ran twice {cut.twice}, lost {cut.lost} (address {' -> '.join(cut.addresses)})")
    assert cut.addresses[0] != cut.addresses[1], "the worker came back on its old address: the cut proves nothing"
    assert not cut.recovered and cut.held == cut.in_flight
    assert cut.lost == 0  # the tasks were only held, and an operator's recovery gets them run


def address(worker, network: str) -> str:
    worker.reload()
    return worker.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def settled(stack, timeout: float) -> bool:
    """Whether, within the timeout, the queue is empty and `tcel up` finds the worker connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queued(stack) == 0 and stack.tcel("up").code == 0:
            return True
        time.sleep(1)
    return False
