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
    back = time.monotonic()
    records = wait_stored(stack, expected, timeout=180)
    settled = wait_settled(stack)  # the broker gave back what the old connection held unacknowledged
    twice = sum(1 for pids in runs(stack, list(expected)).values() if len(pids) > 1)
    right, lost = tally(wait_stored(stack, expected, timeout=SECONDS + 30), expected)
    print(f"\nFAULT worker cut off from the network for {CUT} s mid-task: sent {SENT}, in flight at the cut "
          f"{len(in_flight)}, came back {right}, ran twice {twice}, lost {lost} (results {len(records)} stored, "
          f"queue settled {settled - back:.0f} s after the reconnection)")
    assert lost == 0


def wait_settled(stack, timeout: float = 240) -> float:
    """When the queue holds no message and no unacknowledged one (the broker's own count), and `tcel up`
    finds the worker connected again."""
    deadline = time.monotonic() + timeout
    broker = container(stack, "broker")
    while time.monotonic() < deadline:
        listed = broker.exec_run(["rabbitmqctl", "-q", "list_queues", "name", "messages"]).output.decode()
        counts = dict(line.split("\t") for line in listed.strip().splitlines()[1:] if "\t" in line)
        if counts.get("celery") == "0" and stack.tcel("up").code == 0:
            return time.monotonic()
        time.sleep(1)
    raise AssertionError(f"the queue did not settle within {timeout:.0f} s: {listed}")
