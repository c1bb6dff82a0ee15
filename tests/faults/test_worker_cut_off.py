"""The worker is cut off from the stack's network (`docker network disconnect`) mid-task and reconnected:
nothing is lost, and the test shows what ran twice."""

import time

from tests.faults.conftest import container, runs, send_counted, tally, wait_running, wait_stored

SENT = 6
SECONDS = 6
CUT = 8  # longer than what is left of the running tasks: they end while the worker is cut off


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
    records = wait_stored(stack, expected, timeout=180)
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(records, expected)
    print(f"\nFAULT worker cut off from the network for {CUT} s mid-task: sent {SENT}, in flight at the cut "
          f"{len(in_flight)}, came back {right}, ran twice {twice}, lost {lost}")
    assert lost == 0
