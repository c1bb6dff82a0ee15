"""Results stored before the backend restarts are still readable after (Redis's append-only file)."""

from tests.faults.conftest import results, send, tally


def test_results_survive_backend_restart_and_down_up(healthy) -> None:
    stack = healthy
    ids = send(stack, 10)
    expected = {task_id: n for n, task_id in enumerate(ids)}
    assert tally(results(stack, ids), expected)[1] == 0
    backend = stack.engine.containers.get(f"tcel-{stack.name}-backend")
    backend.stop(timeout=10)
    backend.start()
    assert stack.tcel("up").code == 0
    right, lost = tally(results(stack, ids, timeout=5), expected)
    print(f"\nFAULT backend container restarted: stored {len(ids)}, still readable {right}, lost {lost}")
    assert lost == 0
    assert stack.tcel("down").code == 0 and stack.tcel("up").code == 0
    right, lost = tally(results(stack, ids, timeout=5), expected)
    print(f"FAULT backend recreated by down + up: stored {len(ids)}, still readable {right}, lost {lost}")
    assert lost == 0
