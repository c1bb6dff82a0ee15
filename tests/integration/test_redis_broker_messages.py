"""What tcel writes to a Redis broker is what Celery's own `send_task` writes: the same list (kombu's priority
steps included), envelope, body, headers and properties, but for what differs by nature (ids, the sender's host
and pid, kombu's delivery tag). tcel publishes through kombu's Redis transport (redis_publisher.py), so this is a
guard: a change of tcel's message (task_message.py) or of how it publishes shows here first."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest

from celery_cli.redis_queues import priority_lists
from tests.conftest import StackProject, make_project
from tests.integration.test_observe import plain_client
from tests.integration.test_redis_broker import broker_client

BY_NATURE_HEADERS = {"id", "root_id", "origin"}  # the task's id, and the sender's host and pid
# the task's id, kombu's tag for this message, and the sending app's own id (Celery's `oid`, where the rpc://
# result backend sends results; tcel's results are in Redis and it sends none: "")
BY_NATURE_PROPERTIES = {"correlation_id", "delivery_tag", "reply_to"}


@pytest.fixture(scope="module")
def redis_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    with make_project(engine, tmp_path_factory.mktemp("redis-messages")) as project:
        result = project.tcel("up", "--broker", "redis")
        assert result.code == 0, result.stderr
        yield project


def written(stack: StackProject, queue: str) -> dict[str, list[dict]]:
    """Every message in the queue's lists (one per priority step), oldest first, by list; the lists deleted."""
    broker = broker_client(stack)
    try:
        lists = {key: [json.loads(raw) for raw in reversed(broker.lrange(key, 0, -1))] for key in priority_lists(queue)}
        broker.delete(*priority_lists(queue))
    finally:
        broker.close()
    return {key: messages for key, messages in lists.items() if messages}


def comparable(message: dict) -> dict:
    """The message with what differs by nature left out, and its body decoded."""
    assert message["properties"]["body_encoding"] == "base64"
    return {
        **{key: value for key, value in message.items() if key not in ("body", "headers", "properties")},
        "body": json.loads(base64.b64decode(message["body"])),
        "headers": {k: v for k, v in message["headers"].items() if k not in BY_NATURE_HEADERS},
        "properties": {k: v for k, v in message["properties"].items() if k not in BY_NATURE_PROPERTIES},
    }


@pytest.mark.parametrize("priority", [None, 7])
def test_tcel_writes_what_celerys_send_task_writes(redis_stack, priority: int | None) -> None:
    queue = f"compare-{uuid.uuid4().hex[:8]}"  # a queue no worker consumes: both messages stay in Redis
    client = plain_client(redis_stack)
    try:
        theirs_id = client.send_task("tasks.add", [1, 2], queue=queue, priority=priority).id
    finally:
        client.close()
    theirs = written(redis_stack, queue)
    extra = [] if priority is None else ["--priority", str(priority)]
    sent = redis_stack.tcel("call", "tasks.add", "1", "2", "--queue", queue, "--no-check", *extra)
    assert sent.code == 0, sent.stderr
    ours = written(redis_stack, queue)
    assert list(ours) == list(theirs) and len(theirs) == 1, (theirs, ours)  # one message, in the same list
    (key, [their_message]), [our_message] = next(iter(theirs.items())), next(iter(ours.values()))
    assert key == (queue if priority is None else f"{queue}\x06\x166")  # kombu's step for 7 is 6
    assert (their_message["headers"]["id"], our_message["headers"]["id"]) == (theirs_id, sent.stdout.strip())
    assert our_message["properties"]["reply_to"] == ""
    assert comparable(our_message) == comparable(their_message)
