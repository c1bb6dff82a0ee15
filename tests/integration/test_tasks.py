"""Sending tasks and reading results on a real stack (workers run add with a 1 s delay)."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import free_port

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def index_size(stack) -> int:
    import redis

    c = stack.connection
    with redis.Redis.from_url(c.backend_url()) as client:
        return client.zcard("tcel:tasks")


def wait_for_state(stack, task_id: str, state: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = json.loads(stack.tcel("result", task_id, "--json").stdout or "{}")
        if record.get("state") == state or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


def test_add_wait_prints_the_sum(stack) -> None:
    result = stack.tcel("add", "2", "3", "--wait")
    assert result.code == 0, result.stderr
    assert result.stdout == "5\n"
    assert "succeeded" in result.stderr


def test_add_wait_json_has_state_runtime_and_worker(stack) -> None:
    record = stack.tcel_json("add", "-2", "3.5", "--wait")
    assert record["state"] == "SUCCESS" and record["result"] == 1.5
    assert record["name"] == "tasks.add" and record["worker"] == "celery@worker-1"
    assert record["runtime_seconds"] >= 0.9  # the stack's add sleeps 1 s


def test_tsum_keeps_big_integers_exact(stack) -> None:
    result = stack.tcel("tsum", str(2**70), "1", "-1", "--wait")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(2**70)


def test_tsum_reads_numbers_from_stdin(stack) -> None:
    numbers = "\n".join(str(n) for n in range(1, 10_001))
    result = stack.tcel("tsum", "-", "--wait", input=numbers)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(sum(range(1, 10_001)))


def test_without_wait_prints_the_id_and_how_to_fetch_it(stack) -> None:
    sent = stack.tcel("tsum", "1", "2", "3")
    assert sent.code == 0
    task_id = sent.stdout.strip()
    assert UUID.match(task_id)
    assert f"tcel result {task_id}" in sent.stderr
    assert wait_for_state(stack, task_id, "SUCCESS")["result"] == 6


def test_quiet_prints_only_the_id_and_json_one_document(stack) -> None:
    quiet = stack.tcel("tsum", "4", "--quiet")
    assert UUID.match(quiet.stdout.strip()) and quiet.stderr == ""
    document = stack.tcel_json("tsum", "5")
    assert UUID.match(document["id"]) and document["state"] == "SENT"


@pytest.mark.parametrize("bad", ["two", "nan", "inf", "1e999"])
def test_bad_numbers_are_usage_errors_and_nothing_is_sent(stack, bad: str) -> None:
    before = index_size(stack)
    result = stack.tcel("add", "1", bad)
    assert result.code == 2
    assert repr(bad) in result.stderr and "Traceback" not in result.stderr
    assert index_size(stack) == before


def test_wait_timeout_has_its_own_exit_code(stack) -> None:
    result = stack.tcel("add", "1", "1", "--wait", "--timeout", "0.3")
    assert result.code == 6
    assert "after 0.3s" in result.stderr and "tcel result" in result.stderr


def test_failure_sent_by_a_plain_celery_client_shows_traceback_and_is_listed(stack) -> None:
    from celery import Celery

    c = stack.connection
    client = Celery("plain", broker=c.broker_url(), backend=c.backend_url())
    try:
        task_id = client.send_task("tasks.tsum", args=[["a", "b"]]).id
    finally:
        client.close()
    record = wait_for_state(stack, task_id, "FAILURE")
    assert record["state"] == "FAILURE"
    assert record["error"].startswith("TypeError")
    shown = stack.tcel("result", task_id)
    assert shown.code == 9
    assert "FAILURE" in shown.stdout and "Traceback (most recent call last)" in shown.stderr
    listed = stack.tcel_json("results", "--state", "FAILURE")
    assert task_id in [t["id"] for t in listed["tasks"]]
    assert all(t["state"] == "FAILURE" for t in listed["tasks"])


def test_results_lists_newest_first_with_runtimes(stack) -> None:
    first = stack.tcel_json("tsum", "1", "--wait")
    second = stack.tcel_json("tsum", "2", "--wait")
    listed = stack.tcel_json("results", "--limit", "2")["tasks"]
    assert [t["id"] for t in listed] == [second["id"], first["id"]]
    assert all(t["state"] == "SUCCESS" and t["runtime_seconds"] is not None for t in listed)
    table = stack.tcel("results", "--limit", "2")
    assert second["id"] in table.stdout and "tasks.tsum" in table.stdout


def test_unknown_id_is_told_apart_from_a_queued_task(stack) -> None:
    unknown = stack.tcel("result", "00000000-0000-0000-0000-000000000000")
    assert unknown.code == 10 and "no task" in unknown.stderr
    worker = stack.engine.containers.get(f"tcel-{stack.name}-worker-1")
    worker.stop(timeout=10)
    try:
        task_id = stack.tcel("tsum", "7", "--quiet").stdout.strip()
        queued = stack.tcel("result", task_id)
        assert queued.code == 0
        assert "PENDING (queued, not started)" in queued.stdout
    finally:
        assert stack.tcel("up").code == 0
    assert wait_for_state(stack, task_id, "SUCCESS")["result"] == 7


def test_unreachable_broker_is_one_line_and_never_sent(stack) -> None:
    dead = f"amqp://tcel:x@127.0.0.1:{free_port()}//"
    started = time.monotonic()
    result = stack.tcel("add", "1", "2", "--broker-url", dead)
    assert result.code == 4
    assert time.monotonic() - started < 15
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "was not sent" in lines[0] and "x@" not in lines[0]
    assert result.stdout == ""


def test_no_stack_here_says_how_to_start_one(tmp_path) -> None:
    from tests.conftest import run_tcel

    result = run_tcel("add", "1", "2", cwd=tmp_path, env={"CELERY_BROKER_URL": "", "CELERY_RESULT_BACKEND_URL": ""})
    assert result.code == 8
    assert "run 'tcel up' there" in result.stderr


def test_sending_needs_only_a_broker(stack, tmp_path) -> None:
    import uuid

    from tests.conftest import run_tcel

    broker_only = {"CELERY_BROKER_URL": stack.connection.broker_url(), "CELERY_RESULT_BACKEND_URL": ""}
    sent = run_tcel("tsum", "1", "2", "--project-name", f"nostack{uuid.uuid4().hex[:6]}", cwd=tmp_path, env=broker_only)
    assert sent.code == 0, sent.stderr
    assert UUID.match(sent.stdout.strip())
    assert "result cannot be looked up" in sent.stderr and "--backend-url" in sent.stderr
    assert wait_for_state(stack, sent.stdout.strip(), "SUCCESS")["result"] == 3


def test_a_message_over_the_brokers_limit_is_refused_before_sending(stack) -> None:
    limit = stack.engine.containers.get(f"tcel-{stack.name}-broker").exec_run(
        ["rabbitmqctl", "eval", "application:get_env(rabbit, max_message_size)."]
    )
    assert b"16777216" in limit.output, "tcel writes the limit into the broker's configuration"
    before = index_size(stack)
    huge = json.dumps([10**40] * 450_000)  # about 18.5 MB of JSON (`tsum -` would stream it in chunks)
    result = stack.tcel("call", "tasks.tsum", "-", "--no-check", input=huge)
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the broker's limit of 16 MiB" in lines[0] and "not sent" in lines[0]
    assert index_size(stack) == before, "nothing was sent"
