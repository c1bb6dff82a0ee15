"""The Docker engine itself restarts under a running stack with tasks queued and running: the stack is ready again
without any tcel command (its containers' restart policy) and every task comes back with its result.

The engine is one of scripts/swarm-lab's, so the rest of the suite's engine is not disturbed: tcel runs its plain
containers there (DOCKER_HOST is the node's socket), and every tcel command runs inside the node's network
namespace, where the stack publishes its ports on 127.0.0.1. The project is the fault stack's (tests/faults), whose
`counted` task records each of its runs in the backend, so a task run twice is counted, not just a result seen.
The engine restarts twice: cleanly (`swarm-lab stop`: SIGTERM, the engine stops its containers and exits) and by
a power cut (`swarm-lab kill`: SIGKILL to the engine and everything of the node); `swarm-lab up` starts it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.conftest import REPO, StackProject, make_project
from tests.faults.conftest import queued, results, tally, write_fault_project
from tests.swarm.conftest import NODES, Lab, swarm_lab, wait_healthy

pytestmark = pytest.mark.swarm

NODE = "tcel-node-1"
SOCKET = f"unix:///run/tcel-swarm-lab/{NODE}.sock"
IN_NODE = ("nsenter", f"--net=/run/netns/{NODE}", "--")  # not `ip netns exec`: it remounts /sys
CONCURRENCY = 2
TASKS = 10
SECONDS = 4  # each task's run: 10 of them on 2 processes keep the worker busy for 20 s
READY_TIMEOUT = 120

# Run inside the node's namespace: each task's runs (tests/faults' `counted` records them) and stored result.
COUNTS = """
import json, sys
from pathlib import Path
from tests.conftest import StackProject
from tests.faults.conftest import runs, stored
stack = StackProject(sys.argv[1], Path(sys.argv[2]), None)
ids = json.load(sys.stdin)
print(json.dumps({"runs": runs(stack, ids), "stored": stored(stack, ids)}))
"""


def worker_image(stack: StackProject) -> str:
    """The project's worker image, built on the main engine if it has none: the lab's nodes reach no package
    index, so tcel could not build it there. The same files as the fault stack's make the same image."""
    import docker

    from celery_cli.settings import resolve_project, setting
    from celery_cli.stack.images import image_exists
    from celery_cli.stack.worker_image import worker_image as project_image

    python_image = setting("TCEL_PYTHON_IMAGE")
    image = project_image(resolve_project(stack.directory, stack.name), None)
    tag = image.name(python_image)
    main = docker.from_env(timeout=600)  # a build can go quiet for longer than the session client's 30 s
    try:
        if not image_exists(main, tag):
            image.build(main, tag, python_image, lambda _line: None)
    finally:
        main.close()
    return tag


@pytest.fixture(scope="module")
def node_stack(lab: Lab, tmp_path_factory) -> Iterator[StackProject]:
    """A plain-container stack on the lab's first node (1 worker, 2 processes), its images copied there."""
    import docker

    from celery_cli.settings import setting

    node = docker.DockerClient(base_url=SOCKET, timeout=60)
    directory = tmp_path_factory.mktemp("engine-restart")
    write_fault_project(directory)
    try:
        with make_project(node, directory) as project:
            project.env.update({"DOCKER_HOST": SOCKET, "TCEL_ENGINE": "containers"})
            project.wrapper = IN_NODE
            images = (setting("TCEL_BROKER_IMAGE"), setting("TCEL_BACKEND_IMAGE"), worker_image(project))
            loaded = swarm_lab("load", *images, timeout=900)
            assert loaded.returncode == 0, loaded.stderr
            up = project.tcel("up", "--concurrency", str(CONCURRENCY))
            assert up.code == 0, up.stderr
            yield project
    finally:
        node.close()


def counts(stack: StackProject, ids: list[str]) -> tuple[dict[str, list[int]], dict[str, dict]]:
    """Each task's runs (pids of the pool processes that started it) and its stored result record."""
    done = subprocess.run(
        [*stack.wrapper, sys.executable, "-c", COUNTS, stack.name, str(stack.directory)],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found["runs"], found["stored"]


def send_counted(stack: StackProject) -> dict[str, int]:
    """Send TASKS counted tasks with tcel, without waiting; {task id: its expected result}."""
    expected = {}
    for n in range(TASKS):
        sent = stack.tcel("call", "tasks.counted", str(n), str(SECONDS), "--quiet")
        assert sent.code == 0, sent.stderr
        expected[sent.stdout.strip()] = n
    return expected


def wait_running(stack: StackProject, ids: list[str], timeout: float = 30) -> list[str]:
    """The tasks running (started, no result yet) once every pool process runs one."""
    deadline = time.monotonic() + timeout
    while True:
        started, stored = counts(stack, ids)
        running = [t for t in ids if started[t] and stored[t].get("status") != "SUCCESS"]
        if len(running) >= CONCURRENCY:
            return running
        assert time.monotonic() < deadline, f"{len(running)} tasks running after {timeout} s"
        time.sleep(0.2)


@pytest.mark.parametrize("restart", ["stop", "kill"])
def test_engine_restart_with_tasks_queued_and_running_loses_none(node_stack: StackProject, restart: str):
    """`stop`: the engine shuts down cleanly (the worker's SIGQUIT gives its running tasks back); `kill`: a power
    cut. Either way the same containers come back by their restart policy, `tcel status` is healthy without a
    `tcel up`, and every task ends SUCCESS with its result; a task running at the restart runs again."""
    stack = node_stack
    before = {c.name: c.id for c in stack.containers()}
    expected = send_counted(stack)
    ids = list(expected)
    running = wait_running(stack, ids)
    in_queue = queued(stack)  # ready and unacknowledged, as the broker counts them
    assert in_queue > len(running), f"no task waiting in the queue: {in_queue} queued, {len(running)} running"

    from celery_cli.stack.docker_client import docker_time

    cut = datetime.now(UTC)
    stopped = swarm_lab(restart, NODE)
    assert stopped.returncode == 0 and "no engine running" not in stopped.stdout + stopped.stderr, stopped
    starting = time.monotonic()
    started = swarm_lab("up", str(NODES))  # starts the node's engine again on its data root, whatever happened
    assert stopped.returncode == 0, stopped.stderr
    assert started.returncode == 0, started.stderr
    wait_healthy(stack, timeout=READY_TIMEOUT)
    ready = time.monotonic() - starting

    records = results(stack, ids, timeout=180)
    right, lost = tally(records, expected)
    ran, _ = counts(stack, ids)
    twice = sorted(t for t in ids if len(ran[t]) > 1)
    print(
        f"\nFAULT engine {restart} + start with {len(running)} tasks running and {in_queue - len(running)} queued: "
        f"sent {len(ids)}, came back {right}, lost {lost}, ran twice {len(twice)} "
        f"({len(set(twice) & set(running))} of them seen running before it), healthy {ready:.1f} s after "
        f"`swarm-lab up` began"
    )
    assert {c.name: c.id for c in stack.containers()} == before, "containers were recreated, not restarted"
    restarted = {c.name: docker_time(c.attrs["State"]["StartedAt"]) for c in stack.containers()}
    assert all(when is not None and when > cut for when in restarted.values()), ("not restarted", cut, restarted)
    assert lost == 0, {t: records[t] for t in ids if records[t].get("result") != expected[t]}
    assert all(ran[t] for t in ids), "a task has a result but no recorded run"
