"""The backend stops while `--wait` waits for a task: one clear line naming the task, which goes on; its
result is readable once the backend is back."""

import os
import subprocess
import sys
import time

from tests.faults.conftest import backend, container, wait_stored

SECONDS = 5


def test_the_backend_stopping_under_wait_is_a_clear_error_and_the_result_is_kept(healthy) -> None:
    stack = healthy
    with backend(stack) as client:
        before = set(client.keys("fault:runs:*"))
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery_cli",
            "call",
            "tasks.counted",
            "7",
            str(SECONDS),
            "--wait",
            "--no-check",
            "--project-name",
            stack.name,
        ],
        cwd=stack.directory,
        env={**os.environ, "NO_COLOR": "1", **stack.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        with backend(stack) as client:
            while not (started := set(client.keys("fault:runs:*")) - before) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert started, "the task did not start within 30 s"
        task_id = started.pop().decode().removeprefix("fault:runs:")
        redis = container(stack, "backend")
        stopped = time.monotonic()
        redis.stop(timeout=10)
        out, err = waiting.communicate(timeout=30)
        gave_up = time.monotonic() - stopped
    finally:
        waiting.kill()
    redis.start()  # back before the task ends: the worker stores its result as usual
    print(
        f"\nFAULT backend stopped while --wait waited: exit {waiting.returncode} {gave_up:.1f} s after the stop: "
        f"{err.strip()}"
    )
    assert waiting.returncode == 4 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert f"task {task_id} was sent, but waiting for its result failed: the backend" in err
    assert f"tcel result {task_id}" in err
    assert stack.tcel("up").code == 0
    record = wait_stored(stack, {task_id: 7}, timeout=SECONDS + 30)[task_id]
    shown = stack.tcel_json("result", task_id)
    print(f"FAULT backend back: task {task_id} {shown['state']}, result {shown.get('result')}")
    assert record.get("status") == "SUCCESS" and shown["state"] == "SUCCESS" and shown["result"] == 7
