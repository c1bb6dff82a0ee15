"""The streamed, distributed `tsum -` and big arguments on a real stack: sums equal Python's over several chunk
tasks, huge integers stay exact, a bad word mid-stream is a usage error that leaves nothing queued, small
inputs stay one task, and neither a big argument nor a dropped subscription breaks `--wait`."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time

from tests.integration.test_tasks import index_size

FINAL = {"SUCCESS", "REVOKED"}


def backend(stack):
    import redis

    c = stack.connection
    return redis.Redis.from_url(c.backend_url(), decode_responses=True)


def broker_channel(stack, use) -> object:
    import amqp

    c = stack.connection
    connection = amqp.Connection(f"{c.host}:{c.broker_port}", userid=c.broker_user, password=c.broker_password)
    connection.connect()
    try:
        return use(connection.channel())
    finally:
        connection.close()


def queued_messages(stack) -> int:
    return broker_channel(stack, lambda channel: channel.queue_declare("celery", passive=True).message_count)


def test_a_streamed_sum_is_summed_by_several_chunk_tasks_and_equals_pythons(stack) -> None:
    rng = random.Random(13)
    numbers = [rng.randint(-(10**12), 10**12) for _ in range(1_000_000)]
    record = json.loads(stack.tcel("tsum", "-", "--wait", "--json", input="\n".join(map(str, numbers))).stdout)
    assert record["result"] == sum(numbers) and record["name"] == "tasks.tsum"
    job = record["job"]
    assert job["numbers"] == 1_000_000 and job["chunks"] >= 10 and len(job["chunk_ids"]) == job["chunks"]
    chunk = stack.tcel_json("result", job["chunk_ids"][-1])
    assert chunk["name"] == "tasks.tsum_chunk" and chunk["state"] == "SUCCESS"
    shown = stack.tcel("result", record["id"])
    assert "1,000,000 numbers from a stream" in shown.stdout
    assert f"{job['chunks']} x tasks.tsum_chunk: {job['chunk_ids'][0]}, ..." in shown.stdout


def test_huge_integers_stay_exact_across_chunks(stack) -> None:
    numbers = [(-1) ** n * (10**4299 + n) for n in range(700)] + [3**8000]  # about 3 MB, the last at 3,818 digits
    record = json.loads(stack.tcel("tsum", "-", "--wait", "--json", input=" ".join(map(str, numbers))).stdout)
    assert record["state"] == "SUCCESS", record
    assert record["job"]["chunks"] >= 3 and record["result"] == sum(numbers)


def test_a_bad_word_mid_stream_is_exit_2_with_its_place_and_leaves_nothing_queued(stack) -> None:
    text = "\n".join(str(100_000 + n) for n in range(300_000)) + "\nx\n5\n"  # 2 MiB of numbers, then x
    result = stack.tcel("tsum", "-", "--wait", input=text)
    assert result.code == 2, result.stderr
    message = result.stderr.strip()
    assert message.startswith(
        "error: not a number: 'x' (line 300,001 of the input, number 300,001); nothing was "
        "summed: of the 2 chunk task(s) sent, "
    ), message
    assert "Traceback" not in message
    revoked = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", message)
    deadline = time.monotonic() + 15
    for task_id in revoked:  # what was in flight ends revoked, or finished if it was already running
        while stack.tcel_json("result", task_id)["state"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stack.tcel_json("result", task_id)["state"] in FINAL
    assert queued_messages(stack) == 0
    print(f"STREAM bad word after 2 chunks: {len(revoked)} revoked in flight; {message.split('; ', 1)[1][:160]}")


def test_a_bad_word_in_the_first_chunk_sends_nothing(stack) -> None:
    before = index_size(stack)
    result = stack.tcel("tsum", "-", input="1 2 3\n4 4.5.6\n")
    assert result.code == 2
    assert "not a number: '4.5.6' (line 2 of the input, number 5)" in result.stderr
    assert index_size(stack) == before


def test_small_input_stays_one_task(stack) -> None:
    before = index_size(stack)
    record = json.loads(stack.tcel("tsum", "-", "--wait", "--json", input="\n".join(map(str, range(10_000)))).stdout)
    assert record["result"] == sum(range(10_000)) and record["job"] is None
    assert stack.tcel_json("tsum", "1", "2", "3", "--wait")["result"] == 6
    assert index_size(stack) == before + 2


def test_a_big_argument_stays_out_of_the_result_and_its_state_messages(stack) -> None:
    """`call` with 7 MB of arguments through stdin: the stored result and every message published on the
    result channels while it runs stay small (Celery's extended results would copy the arguments into both)."""
    sizes: list[int] = []
    listening = threading.Event()
    done = threading.Event()

    def listen() -> None:
        pubsub = backend(stack).pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe("celery-task-meta-*")
        listening.set()
        while not done.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message:
                sizes.append(len(message["data"]))
        pubsub.close()

    listener = threading.Thread(target=listen)
    listener.start()
    listening.wait(10)
    numbers = list(range(1_000_000))
    try:
        result = stack.tcel("call", "tasks.tsum", "-", "--wait", "--json", input=json.dumps(numbers))
    finally:
        done.set()
        listener.join()
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["result"] == sum(numbers)
    assert len(record["args"]) <= 200  # the index keeps a bounded view of them
    assert backend(stack).strlen(f"celery-task-meta-{record['id']}") < 1024
    assert sizes and max(sizes) < 1024, sizes


def test_wait_reads_the_result_when_the_backend_drops_the_subscription(stack) -> None:
    """Redis drops subscribers (an overrun output buffer; here CLIENT KILL): `--wait` reads the result instead."""
    redis_client = backend(stack)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "celery_cli", "add", "1", "2", "--wait", "--project-name", stack.name],
        cwd=stack.directory,
        env={**os.environ, **stack.env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not redis_client.pubsub_channels("celery-task-meta-*") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert redis_client.client_kill_filter(_type="pubsub") >= 1  # the stack's add sleeps 1 s: it is still waiting
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out == "3\n"


def test_wait_says_so_when_the_backend_drops_the_subscription_and_then_stops_answering(stack) -> None:
    redis_client = backend(stack)
    waiting = subprocess.Popen(  # to a queue no worker consumes: it waits as long as the test needs
        [
            sys.executable,
            "-m",
            "celery_cli",
            "call",
            "tasks.add",
            "1",
            "2",
            "--queue",
            "tcel-test-nobody",
            "--no-check",
            "--wait",
            "--project-name",
            stack.name,
        ],
        cwd=stack.directory,
        env={**os.environ, **stack.env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not redis_client.pubsub_channels("celery-task-meta-*") and time.monotonic() < deadline:
        time.sleep(0.01)
    backend_container = stack.engine.containers.get(f"tcel-{stack.name}-backend")
    redis_client.client_kill_filter(_type="pubsub")
    while redis_client.client_list(_type="pubsub") and time.monotonic() < deadline:  # Redis closes it a bit later
        time.sleep(0.01)
    time.sleep(0.5)  # tcel hears of it within 0.25 s
    backend_container.pause()
    try:
        _out, err = waiting.communicate(timeout=60)
    finally:
        backend_container.unpause()
        broker_channel(
            stack,
            lambda channel: (channel.queue_delete("tcel-test-nobody"), channel.exchange_delete("tcel-test-nobody")),
        )
    assert waiting.returncode == 4, err
    assert "dropped tcel's subscription to the results" in err and "did not answer a read either" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
