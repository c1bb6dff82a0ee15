"""SIGKILL of one pool process inside the worker (not the container, whose connection would drop and
redeliver anyway) while it runs a task: `task_reject_on_worker_lost` gives the task back to the queue and
another pool process runs it to the end. With that switch off, the same kill loses the task."""

from tests.faults.conftest import container, runs, send_counted, switched_off, wait_running, wait_stored

SECONDS = 4


def kill_the_pool_process_running_a_task(stack) -> tuple[list[int], dict]:
    """(the pids that ran the task, its stored record)."""
    expected = send_counted(stack, 1, SECONDS)
    (task_id,) = expected
    assert wait_running(stack, [task_id], at_least=1), "the task did not start within 30 s"
    (pid,) = runs(stack, [task_id])[task_id]
    killed = container(stack, "worker-1").exec_run(["sh", "-c", f"kill -9 {pid}"])
    assert killed.exit_code == 0, killed.output
    record = wait_stored(stack, expected, timeout=SECONDS + 30)[task_id]
    return runs(stack, [task_id])[task_id], record


def test_a_killed_pool_process_s_task_is_run_again_to_the_end(healthy) -> None:
    pids, record = kill_the_pool_process_running_a_task(healthy)
    print(
        f"\nFAULT pool process {pids[0]} killed mid-task: state {record.get('status')}, runs {len(pids)} "
        f"(pool processes {pids})"
    )
    assert record.get("status") == "SUCCESS" and record.get("result") == 0
    assert len(pids) == 2 and pids[0] != pids[1]


def test_without_reject_on_worker_lost_the_killed_task_fails_and_is_not_run_again(healthy) -> None:
    with switched_off(healthy, "task_reject_on_worker_lost"):
        pids, record = kill_the_pool_process_running_a_task(healthy)
    print(
        f"\nFAULT (protection off: task_reject_on_worker_lost = False) pool process killed mid-task: state "
        f"{record.get('status')} ({(record.get('result') or {}).get('exc_type')}), runs {len(pids)}"
    )
    assert record.get("status") == "FAILURE" and record["result"]["exc_type"] == "WorkerLostError"
    assert len(pids) == 1
