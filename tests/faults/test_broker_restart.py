"""Tasks queued while no worker runs survive the broker's restart, and `tcel down` then `tcel up`."""

from tests.faults.conftest import results, send, tally


def stop_worker(stack) -> None:
    stack.engine.containers.get(f"tcel-{stack.name}-worker-1").stop(timeout=10)


def test_queued_tasks_survive_a_broker_container_restart(healthy) -> None:
    stack = healthy
    stop_worker(stack)
    ids = send(stack, 10)
    broker = stack.engine.containers.get(f"tcel-{stack.name}-broker")
    broker.stop(timeout=10)
    broker.start()
    assert stack.tcel("up").code == 0
    right, lost = tally(results(stack, ids), {task_id: n for n, task_id in enumerate(ids)})
    print(f"\nFAULT broker container restarted with tasks queued: sent {len(ids)}, came back {right}, lost {lost}")
    assert lost == 0


def test_queued_tasks_survive_down_and_up(healthy) -> None:
    stack = healthy
    stop_worker(stack)
    ids = send(stack, 10)
    assert stack.tcel("down").code == 0
    assert stack.containers() == []
    assert stack.tcel("up").code == 0
    right, lost = tally(results(stack, ids), {task_id: n for n, task_id in enumerate(ids)})
    print(f"\nFAULT tcel down + up with tasks queued: sent {len(ids)}, came back {right}, lost {lost}")
    assert lost == 0
