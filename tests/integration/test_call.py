"""Any task by name on real stacks: `call`, `retry`, `env`, `inspect`, `control` and worker queues.

The shared `stack` runs the tutorial's tasks; `own` is a project directory with its own tasks.py (a task
taking kwargs, one that raises, a slow one), whose workers consume `celery` and `extra`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import REPO, StackProject, free_port, make_project
from tests.integration.test_tasks import UUID, index_size, wait_for_state

OWN_TASKS = """
import time

from celery import Celery

app = Celery("tasks")
app.config_from_object("celeryconfig")


@app.task
def add(x, y):
    return x + y


@app.task
def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"


@app.task
def boom(message="boom"):
    raise ValueError(message)


@app.task
def slow(seconds):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture(scope="module")
def own(engine, tmp_path_factory) -> Iterator[StackProject]:
    """A project with its own Dockerfile and tasks.py, up with workers on the queues celery and extra."""
    directory = tmp_path_factory.mktemp("own")
    for name in ("Dockerfile", "celeryconfig.py", "worker_hooks.py", ".dockerignore", "constraints.txt"):
        shutil.copy(REPO / name, directory / name)
    (directory / "tasks.py").write_text(OWN_TASKS)
    with make_project(engine, directory) as project:
        result = project.tcel("up", "--queues", "celery,extra")
        assert result.code == 0, result.stderr
        yield project


def sent_id(result) -> str:
    assert result.code == 0, result.stderr
    task_id = result.stdout.strip()
    assert UUID.match(task_id)
    return task_id


# ---- call on the tutorial's stack ----------------------------------------------------------------------------


def test_call_sends_json_arguments_and_waits(stack) -> None:
    result = stack.tcel("call", "tasks.tsum", "[1, 2, 3]", "--wait")
    assert result.code == 0, result.stderr
    assert result.stdout == "6\n"
    record = stack.tcel_json("call", "tasks.add", "--kwargs", '{"x": -2, "y": 3.5}', "--wait")
    assert record["state"] == "SUCCESS" and record["result"] == 1.5 and record["name"] == "tasks.add"
    assert record["queue"] == "celery"


def test_an_unknown_name_is_refused_with_the_known_ones_and_nothing_is_sent(stack) -> None:
    before = index_size(stack)
    refused = stack.tcel("call", "tasks.tsm", "[1]")
    assert refused.code == 2 and "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "no running worker knows task 'tasks.tsm'" in line and "did you mean tasks.tsum?" in line
    assert "tasks.add, tasks.tsum" in line and "--no-check" in line
    assert index_size(stack) == before


def test_no_check_sends_a_name_no_worker_knows_and_celery_reports_it_unregistered(stack) -> None:
    result = stack.tcel("call", "tasks.nope", "--no-check", "--wait", "--timeout", "30")
    assert result.code == 9
    assert "NotRegistered" in result.stderr


def test_a_word_that_is_not_json_is_refused_unless_raw_strings(stack) -> None:
    refused = stack.tcel("call", "tasks.tsum", "two")
    assert refused.code == 2 and "argument 'two' is not JSON" in refused.stderr
    raw = stack.tcel("call", "tasks.add", "ab", "cd", "--raw-strings", "--wait")
    assert raw.code == 0, raw.stderr
    assert raw.stdout.strip() == "abcd"


def test_countdown_delays_the_start_and_expires_drops_a_task_not_started_in_time(stack) -> None:
    record = stack.tcel_json("call", "tasks.tsum", "[5]", "--countdown", "2", "--wait")
    assert record["state"] == "SUCCESS" and record["result"] == 5
    waited = datetime.fromisoformat(record["started"]) - datetime.fromisoformat(record["sent"])
    assert waited.total_seconds() >= 1.9
    expired = stack.tcel("call", "tasks.tsum", "[6]", "--countdown", "2", "--expires", "1", "--wait")
    assert expired.code == 9 and "REVOKED" in expired.stderr


def test_a_task_sent_to_a_queue_no_worker_consumes_is_kept_there_as_celery_would_send_it(stack) -> None:
    import amqp

    queue = f"tcel-test-held-{os.getpid()}"
    result = stack.tcel(
        "call",
        "tasks.tsum",
        "[1, 2]",
        "--queue",
        queue,
        "--priority",
        "7",
        "--countdown",
        "60",
        "--kwargs",
        "{}",
        "--quiet",
    )
    task_id = sent_id(result)
    assert f"no running worker consumes queue '{queue}'" in result.stderr
    c = stack.connection
    client = amqp.Connection(host=f"{c.host}:{c.broker_port}", userid=c.broker_user, password=c.broker_password)
    client.connect()
    try:
        channel = client.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)  # a mismatch (not durable) would be refused
        message = channel.basic_get(queue, no_ack=True)
        assert message is not None
        assert message.properties["priority"] == 7 and message.properties["delivery_mode"] == 2
        headers = message.properties["application_headers"]
        assert headers["id"] == task_id and headers["task"] == "tasks.tsum" and headers["eta"]
        assert json.loads(message.body)[:2] == [[[1, 2]], {}]
        assert message.delivery_info["exchange"] == "" and message.delivery_info["routing_key"] == queue
    finally:
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
        client.close()


def test_a_queue_its_consumers_declared_with_other_arguments_is_sent_to_as_it_is(stack) -> None:
    """A worker with task_queue_max_priority declares its queues with x-max-priority; declaring one again
    without it would be refused, so tcel leaves an existing queue as it is."""
    import amqp

    queue = f"tcel-test-priority-{os.getpid()}"
    c = stack.connection
    client = amqp.Connection(host=f"{c.host}:{c.broker_port}", userid=c.broker_user, password=c.broker_password)
    client.connect()
    try:
        channel = client.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-max-priority": 10})
        low = sent_id(stack.tcel("call", "tasks.tsum", "[1]", "-Q", queue, "--priority", "1", "--no-check", "-q"))
        high = sent_id(stack.tcel("call", "tasks.tsum", "[2]", "-Q", queue, "--priority", "9", "--no-check", "-q"))
        first = channel.basic_get(queue, no_ack=True)
        assert first.properties["application_headers"]["id"] == high  # the broker honoured the priority
        assert channel.basic_get(queue, no_ack=True).properties["application_headers"]["id"] == low
    finally:
        channel.queue_delete(queue)
        client.close()


def test_retry_sends_a_failed_task_again_and_result_says_which(stack) -> None:
    failed = stack.tcel("call", "tasks.tsum", '["a", "b"]', "--wait")
    assert failed.code == 9
    old = re.search(r"task ([0-9a-f-]{36})", failed.stderr).group(1)
    new = sent_id(stack.tcel("retry", old, "--quiet"))
    assert new != old
    record = wait_for_state(stack, new, "FAILURE")
    assert record["retry_of"] == old and record["name"] == "tasks.tsum" and record["state"] == "FAILURE"
    shown = stack.tcel("result", new)
    assert "retry of" in shown.stdout and old in shown.stdout


def test_retry_of_an_id_the_backend_does_not_know_is_exit_10(stack) -> None:
    result = stack.tcel("retry", "00000000-0000-0000-0000-000000000000")
    assert result.code == 10 and "no task" in result.stderr and "expired" in result.stderr


def test_env_prints_urls_a_plain_celery_client_can_use(stack) -> None:
    c = stack.connection
    document = stack.tcel_json("env")
    assert document == {"CELERY_BROKER_URL": c.broker_url(), "CELERY_RESULT_BACKEND_URL": c.backend_url()}
    lines = stack.tcel("env").stdout
    client = (
        "import os; from celery import Celery; app = Celery(broker=os.environ['CELERY_BROKER_URL'], "
        "backend=os.environ['CELERY_RESULT_BACKEND_URL']); "
        "print(app.send_task('tasks.tsum', args=[[4, 5]]).get(timeout=30)); app.close()"
    )
    done = subprocess.run(
        ["sh", "-c", f'eval "$1" && exec "{sys.executable}" -c "$2"', "sh", lines, client],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=stack.directory,
        env={k: v for k, v in os.environ.items() if not k.startswith("CELERY_")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "9"


def test_inspect_is_addressed_to_the_stacks_workers_and_says_who_answered(stack) -> None:
    registered = stack.tcel_json("inspect", "registered")
    assert registered["no_answer"] == [] and {"tasks.add", "tasks.tsum"} <= {
        n.split(" ")[0] for n in registered["workers"]["celery@worker-1"]
    }
    stats = stack.tcel("inspect", "stats")
    assert stats.code == 0 and "celery@worker-1" in stats.stdout and "pool now" in stats.stdout
    conf = stack.tcel("inspect", "conf")
    c = stack.connection
    assert conf.code == 0 and "broker_url" in conf.stdout
    assert c.broker_password not in conf.stdout and c.backend_password not in conf.stdout
    unknown = stack.tcel("inspect", "active", "--worker", "worker-9")
    assert (
        unknown.code == 2 and "no running worker 'worker-9'" in unknown.stderr and "celery@worker-1" in unknown.stderr
    )


def test_inspect_task_finds_a_scheduled_one(stack) -> None:
    task_id = sent_id(stack.tcel("call", "tasks.tsum", "[7]", "--countdown", "3", "--quiet"))
    held = stack.tcel_json("inspect", "task", task_id)
    assert held["workers"]["celery@worker-1"][task_id][0] == "scheduled"
    scheduled = stack.tcel("inspect", "scheduled")
    assert task_id in scheduled.stdout
    assert wait_for_state(stack, task_id, "SUCCESS")["result"] == 7


# ---- a project with its own tasks.py and queues -------------------------------------------------------------


def test_own_tasks_with_kwargs_on_another_queue(own) -> None:
    status = own.tcel_json("status")
    consumers = {q["name"]: q["consumers"] for q in status["queues"]}
    assert consumers.get("celery", 0) >= 1 and consumers.get("extra", 0) >= 1
    record = own.tcel_json(
        "call", "tasks.greet", '"bob"', "--kwargs", '{"punctuation": "?"}', "--queue", "extra", "--wait"
    )
    assert record["result"] == "hello bob?" and record["queue"] == "extra"


def test_a_task_that_raises_and_its_retry_keep_kwargs_and_queue(own) -> None:
    failed = own.tcel("call", "tasks.boom", "--kwargs", '{"message": "bad input"}', "-Q", "extra", "--wait")
    assert failed.code == 9 and "ValueError: bad input" in failed.stderr
    assert "Traceback" in failed.stderr and 'tasks.py", line' in failed.stderr  # the task's, as data
    old = re.search(r"task ([0-9a-f-]{36})", failed.stderr.splitlines()[-1]).group(1)
    again = own.tcel("retry", old, "--wait", "--json")
    assert again.code == 9
    record = json.loads(again.stdout)
    assert record["retry_of"] == old and record["queue"] == "extra" and record["error"] == "ValueError: bad input"
    assert "bad input" in (record["kwargs"] or "")


def test_the_tutorials_client_works_after_eval_tcel_env_and_its_task_can_be_retried(own) -> None:
    lines = own.tcel("env").stdout
    client = "from tasks import greet; r = greet.delay('plain', punctuation='.'); print(r.id, r.get(timeout=30))"
    done = subprocess.run(
        ["sh", "-c", f'eval "$1" && exec "{sys.executable}" -c "$2"', "sh", lines, client],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=own.directory,
        env={k: v for k, v in os.environ.items() if not k.startswith("CELERY_")},
    )
    assert done.returncode == 0, done.stderr
    task_id, value = done.stdout.split(maxsplit=1)
    assert value.strip() == "hello plain."
    again = own.tcel("retry", task_id, "--wait")
    assert again.code == 0 and again.stdout.strip() == "hello plain."


def test_inspect_active_shows_a_running_task(own) -> None:
    task_id = sent_id(own.tcel("call", "tasks.slow", "8", "--quiet"))  # long enough for a loaded machine
    deadline = time.monotonic() + 20
    while True:
        active = own.tcel_json("inspect", "active")["workers"]["celery@worker-1"]
        if any(t["id"] == task_id for t in active) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [t["name"] for t in active if t["id"] == task_id] == ["tasks.slow"]
    table = own.tcel("inspect", "active")
    assert task_id in table.stdout and "tasks.slow" in table.stdout


def test_control_commands_report_who_acknowledged(own) -> None:
    limited = own.tcel_json("control", "rate-limit", "tasks.greet", "100/s")
    assert limited["acknowledged"] == {"celery@worker-1": "new rate limit set successfully"}
    unknown = own.tcel("control", "rate-limit", "tasks.nope", "1/s")
    assert unknown.code == 1 and "refused" in unknown.stdout and "unknown task" in unknown.stdout
    timed = own.tcel_json("control", "time-limit", "tasks.slow", "30", "60")
    assert list(timed["acknowledged"]) == ["celery@worker-1"]
    autoscale = own.tcel("control", "autoscale", "4", "2", "--json")
    assert autoscale.code == 1 and "Autoscale not enabled" in json.loads(autoscale.stdout)["refused"]["celery@worker-1"]
    silent = own.tcel("control", "pool", "grow", "1", "--worker", "worker-7")
    assert silent.code == 2 and "no running worker 'worker-7'" in silent.stderr


def test_pool_grow_and_shrink_show_in_status(own) -> None:
    def pool() -> int:
        return own.tcel_json("status")["workers"][0]["pool"]

    before = pool()
    assert own.tcel_json("control", "pool", "grow", "2")["acknowledged"]
    deadline = time.monotonic() + 15
    while pool() != before + 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert pool() == before + 2
    assert own.tcel_json("control", "pool", "shrink", "2")["acknowledged"]
    while pool() != before and time.monotonic() < deadline + 15:
        time.sleep(0.3)
    assert pool() == before


def test_add_consumer_picks_up_a_task_waiting_in_a_new_queue_and_cancel_stops(own) -> None:
    result = own.tcel("call", "tasks.greet", '"later"', "--queue", "later", "--quiet")
    task_id = sent_id(result)
    assert "no running worker consumes queue 'later'" in result.stderr
    time.sleep(1)
    assert own.tcel_json("result", task_id)["state"] == "PENDING"
    added = own.tcel_json("control", "add-consumer", "later")
    assert list(added["acknowledged"]) == ["celery@worker-1"]
    assert wait_for_state(own, task_id, "SUCCESS")["result"] == "hello later!"
    assert "later" in [q["name"] for q in own.tcel_json("status")["queues"]]
    assert own.tcel_json("control", "cancel-consumer", "later")["acknowledged"]
    assert "later" not in [q["name"] for q in own.tcel_json("status")["queues"]]


def test_scale_with_queues_moves_the_workers_and_call_warns_about_the_default_queue(own) -> None:
    try:
        scaled = own.tcel_json("scale", "2", "--queues", "extra")
        assert scaled["ready"] is True
        queues = {q["name"]: q["consumers"] for q in own.tcel_json("status")["queues"]}
        assert queues["extra"] == 2 and queues.get("celery", 0) == 0
        sent = own.tcel("call", "tasks.add", "1", "2", "--quiet")
        assert sent.code == 0 and "no running worker consumes queue 'celery'" in sent.stderr
        assert own.tcel("call", "tasks.add", "2", "3", "-Q", "extra", "--wait").stdout.strip() == "5"
    finally:
        assert own.tcel("scale", "1", "--queues", "celery,extra").code == 0
    assert wait_for_state(own, sent.stdout.strip(), "SUCCESS")["result"] == 3  # it waited in celery


def test_a_task_added_to_tasks_py_is_callable_right_after_up(own) -> None:
    assert own.tcel("call", "tasks.mul", "6", "7").code == 2  # not there yet, and the cache knows the rest
    tasks = own.directory / "tasks.py"
    tasks.write_text(tasks.read_text() + "\n\n@app.task\ndef mul(x, y):\n    return x * y\n")
    up = own.tcel("up")
    assert up.code == 0, up.stderr
    result = own.tcel("call", "tasks.mul", "6", "7", "--wait")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_shutdown_asks_first_then_stops_the_worker_and_up_brings_it_back(own) -> None:
    refused = own.tcel("control", "shutdown", "worker-1")
    assert refused.code == 2 and "--yes" in refused.stderr
    try:
        stopped = own.tcel_json("control", "shutdown", "worker-1", "--yes")
        assert stopped["acknowledged"] == {"celery@worker-1": "stopped"}
        worker = own.engine.containers.get(f"tcel-{own.name}-worker-1")
        deadline = time.monotonic() + 20
        while worker.status == "running" and time.monotonic() < deadline:
            time.sleep(0.3)
            worker.reload()
        assert worker.status == "exited"
        gone = own.tcel("inspect", "stats")
        assert gone.code == 8 and "no worker" in gone.stderr
    finally:
        assert own.tcel("up").code == 0
    assert own.tcel_json("inspect", "stats")["no_answer"] == []


# ---- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["call", "tasks.add", "1", "2"],
        ["retry", "some-id"],
        ["env"],
        ["inspect", "stats"],
        ["control", "pool", "grow", "1"],
    ],
)
def test_a_stack_that_was_never_up_is_one_line_and_exit_8(project, command: list[str]) -> None:
    result = project.tcel(*command)
    assert result.code == 8, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "tcel up" in lines[0]


@pytest.mark.parametrize(
    "command", [["call", "tasks.add", "1", "2"], ["inspect", "stats"], ["control", "rate-limit", "tasks.add", "1/s"]]
)
def test_a_broker_that_does_not_answer_is_one_line_and_exit_4(stack, command: list[str]) -> None:
    dead = f"amqp://tcel:secret-pw@127.0.0.1:{free_port()}//"
    started = time.monotonic()
    result = stack.tcel(*command, "--broker-url", dead)
    assert result.code == 4, result.stderr
    assert time.monotonic() - started < 15
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not answer" in lines[0] and "secret-pw" not in lines[0]


def test_secrets_appear_only_in_env(stack) -> None:
    c = stack.connection
    printed = "".join(
        r.stdout + r.stderr
        for r in (
            stack.tcel("call", "tasks.tsum", "[1]", "--wait", "--json"),
            stack.tcel("inspect", "conf", "--json"),
            stack.tcel("control", "rate-limit", "tasks.tsum", "0"),
            stack.tcel("inspect", "stats"),
        )
    )
    assert c.broker_password not in printed and c.backend_password not in printed
    assert c.broker_password in stack.tcel("env").stdout


def test_the_cache_of_registered_names_lives_in_the_state_directory_owner_only(stack) -> None:
    from celery_cli.task_registry import cache_file

    assert stack.tcel("call", "tasks.tsum", "[1]").code == 0
    path: Path = cache_file(stack.connection.broker_url())
    cached = json.loads(path.read_text())
    assert "tasks.tsum" in cached["tasks"] and cached["workers"] == ["celery@worker-1"]
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(path.parent.stat().st_mode & 0o777) == "0o700"
