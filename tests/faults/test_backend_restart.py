"""Results stored before the backend restarts are still readable after (Redis's append-only file), even
when it is SIGKILLed with no chance to save; with the append-only file off, the same kill loses them."""

import time

from tests.faults.conftest import backend, container, results, send, stored, tally, wait_stored

FSYNC_PASSED = 2  # appendfsync everysec: Redis has synced the append-only file within a second of a write


def test_results_survive_backend_restart_and_down_up(healthy) -> None:
    stack = healthy
    ids = send(stack, 10)
    expected = {task_id: n for n, task_id in enumerate(ids)}
    assert tally(results(stack, ids), expected)[1] == 0
    redis = container(stack, "backend")
    redis.stop(timeout=10)
    redis.start()
    assert stack.tcel("up").code == 0
    right, lost = tally(results(stack, ids, timeout=5), expected)
    print(f"\nFAULT backend container restarted: stored {len(ids)}, still readable {right}, lost {lost}")
    assert lost == 0
    assert stack.tcel("down").code == 0 and stack.tcel("up").code == 0
    right, lost = tally(results(stack, ids, timeout=5), expected)
    print(f"FAULT backend recreated by down + up: stored {len(ids)}, still readable {right}, lost {lost}")
    assert lost == 0


def sigkill_the_backend_after_results(stack) -> tuple[int, int]:
    """(stored, still readable after a SIGKILL of the backend and its start)."""
    ids = send(stack, 10)
    expected = {task_id: n for n, task_id in enumerate(ids)}
    assert tally(wait_stored(stack, expected, timeout=60), expected)[1] == 0
    time.sleep(FSYNC_PASSED)
    redis = container(stack, "backend")
    redis.kill()  # SIGKILL: no save on the way out
    redis.start()
    assert stack.tcel("up").code == 0
    right, _ = tally(stored(stack, ids), expected)
    return len(ids), right


def test_results_survive_a_sigkill_of_the_backend(healthy) -> None:
    count, right = sigkill_the_backend_after_results(healthy)
    print(
        f"\nFAULT backend SIGKILLed {FSYNC_PASSED} s after the results: stored {count}, still readable {right}, "
        f"lost {count - right}"
    )
    assert right == count


def test_without_the_append_only_file_a_sigkill_loses_the_results(healthy) -> None:
    with backend(healthy) as client:
        client.config_set("appendonly", "no")  # until the restart, which reads the configuration file again
    count, right = sigkill_the_backend_after_results(healthy)
    print(
        f"\nFAULT (protection off: appendonly no) backend SIGKILLed {FSYNC_PASSED} s after the results: "
        f"stored {count}, still readable {right}, lost {count - right}"
    )
    assert right < count
    with backend(healthy) as client:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
