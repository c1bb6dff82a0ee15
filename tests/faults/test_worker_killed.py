"""SIGKILL of the worker container while add tasks run: every task still gets exactly its one result."""

import json
import time

from tests.faults.conftest import results, tally


def test_worker_killed_mid_task_loses_nothing(healthy) -> None:
    stack = healthy
    expected = {}
    for n in range(12):
        sent = stack.tcel("add", str(n), "1", "--quiet")
        assert sent.code == 0, sent.stderr
        expected[sent.stdout.strip()] = n + 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # kill while tasks are running, not before
        running = json.loads(stack.tcel("results", "--state", "STARTED", "--json").stdout)["tasks"]
        if running:
            break
        time.sleep(0.2)
    assert running, "no task started within 30 s"
    stack.engine.containers.get(f"tcel-{stack.name}-worker-1").kill()  # SIGKILL, no warm shutdown
    assert stack.tcel("up").code == 0  # brings the worker back
    right, lost = tally(results(stack, list(expected)), expected)
    print(f"\nFAULT worker killed mid-task: sent {len(expected)}, came back {right}, lost {lost}")
    assert lost == 0
