"""Windowed publishing on the real broker: every task of a windowed send confirmed and run exactly once, and a
queue that refuses publishes (RabbitMQ nacks them) reported task by task."""

from __future__ import annotations

import uuid

import pytest

from celery_cli.endpoints import Endpoints
from celery_cli.publish_errors import NotAllSent
from celery_cli.publisher import Sender
from celery_cli.task_call import TaskCall


def tsum_runs(stack) -> int:
    stats = stack.tcel_json("inspect", "stats")["workers"]
    return sum(worker.get("total", {}).get("tasks.tsum", 0) for worker in stats.values())


def test_a_windowed_send_has_every_task_confirmed_and_run_exactly_once(stack) -> None:
    before = tsum_runs(stack)
    result = stack.tcel_json("bench", "-n", "400", "--window", "32")  # 13 windows' worth
    assert result["tasks"] == 400 and result["failed"] == 0
    assert tsum_runs(stack) - before == 400  # run once each: none lost, none published twice


def test_a_queue_that_refuses_publishes_gets_them_reported_as_refused(stack) -> None:
    import amqp

    c = stack.connection
    queue = f"tcel-full-{uuid.uuid4().hex[:8]}"
    connection = amqp.Connection(host=f"127.0.0.1:{c.broker_port}", userid=c.broker_user, password=c.broker_password)
    connection.connect()
    channel = connection.channel()
    channel.queue_declare(
        queue, durable=True, auto_delete=False, arguments={"x-max-length": 5, "x-overflow": "reject-publish"}
    )
    confirmed: list[str] = []
    try:
        with Sender(Endpoints(c.broker_url(), None), window=4) as sender, pytest.raises(NotAllSent) as raised:
            calls = [(TaskCall("tasks.tsum", [[n]], queue=queue), f"full-{n}") for n in range(12)]
            sender.send_many(calls, lambda task_id, at: confirmed.append(task_id))
        error = raised.value
        assert confirmed == [f"full-{n}" for n in range(5)] and error.confirmed == 5
        assert error.refused and not error.unconfirmed and len(error.refused) + error.unsent == 7
        assert "5 confirmed" in str(error) and "refused (not queued)" in str(error)
        assert channel.queue_declare(queue, passive=True).message_count == 5
    finally:
        channel.queue_delete(queue)
        connection.close()
