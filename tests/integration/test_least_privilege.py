"""Least privilege on the running stack: each service logs in to the broker and the backend as its own user,
limited to what it needs (stack/access_control.py)."""

from __future__ import annotations

import uuid

import pytest

from celery_cli.credentials import ROLES, role_user, state_file
from celery_cli.names import AUTOSCALE_KEY, INFO_KEY
from celery_cli.settings import resolve_project


def worker_container(stack):
    return next(c for c in stack.containers() if c.labels["io.tcel.service"] == "worker")


def secret_of(container, name: str) -> str:
    code, output = container.exec_run(["cat", f"/run/secrets/{name}"])
    assert code == 0, output
    return output.decode().strip()


def test_the_workers_backend_user_is_refused_flush_config_functions_and_keys_while_tasks_run(stack) -> None:
    import redis

    url = secret_of(worker_container(stack), "celery_result_backend_url")
    assert url.startswith(f"redis://{role_user('worker')}:")
    host_url = url.replace("@backend:6379/", f"@127.0.0.1:{stack.connection.backend_port}/")
    with redis.Redis.from_url(host_url, socket_timeout=3) as workers:
        assert workers.ping()
        for refused in (
            lambda: workers.flushall(),
            lambda: workers.flushdb(),
            lambda: workers.config_get("*"),
            lambda: workers.function_delete("tcel"),
            lambda: workers.keys("*"),
            lambda: workers.execute_command("SHUTDOWN", "NOSAVE"),
            lambda: workers.acl_list(),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                refused()
        # the workers may run Lua (Celery's chords need it), but a script runs with the caller's rules
        with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)perm|can.t run"):
            workers.eval("return redis.call('FLUSHALL')", 0)
    record = stack.tcel_json("add", "2", "3", "--wait")
    assert record["result"] == 5, record
    # the worker wrote the task's start and end into tcel's index through the function the CLI loaded (FCALL)
    with redis.Redis.from_url(stack.connection.backend_url(), socket_timeout=3, decode_responses=True) as cli:
        written = cli.hgetall(INFO_KEY + record["id"])
    assert {"started", "finished", "worker"} <= written.keys(), written


def role_backend(stack, role: str):
    import redis

    c = stack.connection
    url = f"redis://{role_user(role)}:{c.role_passwords[role]}@127.0.0.1:{c.backend_port}/0"
    return redis.Redis.from_url(url, socket_timeout=3)


def test_the_exporters_backend_user_writes_the_autoscalers_key_only(stack) -> None:
    import redis

    record = stack.tcel_json("add", "1", "1", "--wait")
    result_key = f"celery-task-meta-{record['id']}"
    with role_backend(stack, "metrics") as metrics:
        assert metrics.set(AUTOSCALE_KEY, "{}", ex=60)  # what the autoscaler writes (autoscale_state.write)
        assert metrics.get(result_key)  # it reads every key (results, the index)
        for key in (result_key, "celery-task-meta-x", "tcel:tasks", AUTOSCALE_KEY + "x"):
            with pytest.raises(redis.exceptions.NoPermissionError):
                metrics.set(key, "forged")
        with pytest.raises(redis.exceptions.NoPermissionError):
            metrics.expire(result_key, 1)
    with redis.Redis.from_url(stack.connection.backend_url(), socket_timeout=3) as cli:
        assert b"forged" not in (cli.get(result_key) or b"")
        cli.delete(AUTOSCALE_KEY)


@pytest.mark.parametrize("role", ["flower", "metrics"])
def test_flowers_and_the_exporters_backend_users_cannot_publish_a_forged_result(stack, role: str) -> None:
    """A message on celery-task-meta-<id> is taken for the task's result by whoever waits for it."""
    import redis

    with role_backend(stack, role) as monitor:
        with pytest.raises(redis.exceptions.NoPermissionError):
            monitor.publish("celery-task-meta-x", '{"status": "SUCCESS", "result": "forged"}')
        with pytest.raises(redis.exceptions.NoPermissionError):
            monitor.execute_command("SPUBLISH", "celery-task-meta-x", "forged")
        subscriber = monitor.pubsub()
        subscriber.subscribe("celery-task-meta-x")  # what Celery's result consumer does: allowed
        assert subscriber.get_message(timeout=3)["type"] == "subscribe"
        subscriber.close()


def test_a_backend_that_refuses_the_index_function_is_said_at_once_not_waited_for(stack, monkeypatch) -> None:
    """FUNCTION LOAD refused (here: the workers' login, as a backend made with other users would refuse the
    CLI's) is its own error naming the backend, raised at the first look, not 'backend not ready' at the end."""
    import time
    from dataclasses import replace

    from celery_cli import credentials
    from celery_cli.errors import BackendRefused
    from celery_cli.stack.readiness import wait_until_answering

    monkeypatch.setattr(credentials, "BACKEND_USER", role_user("worker"))
    as_worker = replace(stack.connection, backend_password=stack.connection.role_passwords["worker"])
    started = time.monotonic()
    with pytest.raises(
        BackendRefused, match=r"backend at redis://tcel-worker:.*FUNCTION LOAD: .*no permissions"
    ) as refused:
        wait_until_answering(as_worker, set(), lambda pending, since: None, 20.0, lambda message: None)
    assert time.monotonic() - started < 10
    assert as_worker.role_passwords["worker"] not in str(refused.value)  # masked
    assert "tcel down" in str(refused.value.hint)


def test_the_backends_default_user_is_off(stack) -> None:
    import redis

    c = stack.connection
    with (
        redis.Redis(host="127.0.0.1", port=c.backend_port, password=c.backend_password, socket_timeout=3) as default,
        pytest.raises(redis.exceptions.AuthenticationError),
    ):
        default.ping()
    with (
        redis.Redis(host="127.0.0.1", port=c.backend_port, socket_timeout=3) as anonymous,
        pytest.raises(redis.exceptions.AuthenticationError),
    ):
        anonymous.ping()


def monitor_app(stack, role: str):
    from celery import Celery

    c = stack.connection
    url = f"amqp://{role_user(role)}:{c.role_passwords[role]}@127.0.0.1:{c.broker_port}//"
    return Celery("monitor", broker=url)


@pytest.mark.parametrize("role", ["flower", "metrics"])
def test_flowers_and_the_exporters_broker_users_cannot_send_a_task_but_see_the_workers(stack, role: str) -> None:
    import amqp

    app = monitor_app(stack, role)
    try:
        # what Flower and the exporter do: remote control over celery.pidbox, replies on their own queue
        assert app.control.ping(timeout=2.0), "no worker answered a ping through the monitor's user"
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            # events: their own celeryev.<id> queue bound to the celeryev exchange
            events = f"celeryev.{uuid.uuid4()}"
            channel.exchange_declare("celeryev", "topic", durable=True, auto_delete=False)
            channel.queue_declare(events, auto_delete=True, exclusive=True)
            channel.queue_bind(events, "celeryev", "#")
            assert channel.queue_declare("celery", passive=True).queue == "celery"  # queue lengths
        for exchange in ("", "celery"):  # the default exchange (to the queue `celery`), and the task exchange
            with app.connection_for_write() as connection:
                channel = connection.default_channel
                with pytest.raises(amqp.exceptions.AccessRefused):
                    channel.basic_publish(amqp.Message(b"{}"), exchange=exchange, routing_key="celery")
                    channel.queue_declare("celery", passive=True)  # the refusal closes the channel: see it here
    finally:
        app.close()


def test_only_the_clis_user_has_tags_and_every_role_has_its_own_user(stack) -> None:
    broker = next(c for c in stack.containers() if c.labels["io.tcel.service"] == "broker")
    code, output = broker.exec_run(["rabbitmqctl", "-q", "list_users", "--formatter", "json"])
    assert code == 0, output
    import json

    users = {user["user"]: user["tags"] for user in json.loads(output)}
    assert users.pop(stack.connection.broker_user) == ["administrator"]
    assert users == {role_user(role): [] for role in ROLES}
    # RabbitMQ itself checks each password against the hash tcel computed (rabbit_password_hashing_sha256)
    for role in ROLES:
        password = stack.connection.role_passwords[role]
        code, output = broker.exec_run(["rabbitmqctl", "-q", "authenticate_user", role_user(role), password])
        assert code == 0, output
        code, output = broker.exec_run(["rabbitmqctl", "-q", "authenticate_user", role_user(role), password + "x"])
        assert code != 0, output


def test_a_stack_of_an_older_tcel_gets_its_roles_at_the_next_up(project) -> None:
    """A state file without the roles' passwords and a broker volume with only the CLI's user (what an older tcel
    made): the next `up` makes the passwords, and the broker imports the new users at its boot."""
    assert project.tcel("up").code == 0
    path = state_file(resolve_project(project.directory, project.name))
    path.write_text("".join(line for line in path.read_text().splitlines(True) if "SERVICE_PASSWORD" not in line))
    broker = next(c for c in project.containers() if c.labels["io.tcel.service"] == "broker")
    for role in ROLES:
        code, output = broker.exec_run(["rabbitmqctl", "-q", "delete_user", role_user(role)])
        assert code == 0, output
    old = project.connection.role_passwords
    assert not old
    result = project.tcel("up")
    assert result.code == 0, result.stderr
    assert set(project.connection.role_passwords) == set(ROLES)
    assert project.tcel_json("add", "1", "2", "--wait")["result"] == 3


def test_secret_files_belong_to_the_images_user_and_only_it_reads_them(stack) -> None:
    worker = worker_container(stack)
    code, output = worker.exec_run(["sh", "-c", "stat -c '%U %a' /run/secrets/*"])
    assert code == 0, output
    assert set(output.decode().split("\n")) - {""} == {"user 400"}, output
    # the worker's user reads them (it has started with them); another user cannot
    code, output = worker.exec_run(["cat", "/run/secrets/celery_broker_url"], user="nobody")
    assert code != 0 and b"Permission denied" in output, output
