"""Safe defaults, checked on the running stack: nobody else gets in, nothing of others is touched."""

from __future__ import annotations

import json
import stat
import time

import pytest

from celery_cli.credentials import state_file
from celery_cli.settings import resolve_project


def test_ports_are_published_on_loopback_only(stack) -> None:
    for container in stack.containers():
        for bindings in (container.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), container.name


def test_broker_refuses_guest(stack) -> None:
    import amqp

    guest = amqp.Connection(
        host=f"127.0.0.1:{stack.connection.broker_port}", userid="guest", password="guest", connect_timeout=3
    )
    with pytest.raises(amqp.exceptions.AccessRefused):
        guest.connect()


def test_backend_refuses_commands_without_the_password(stack) -> None:
    import redis

    with (
        redis.Redis(host="127.0.0.1", port=stack.connection.backend_port, socket_timeout=3) as anonymous,
        pytest.raises(redis.exceptions.AuthenticationError),
    ):
        anonymous.get("celery-task-meta-anything")


def test_passwords_are_not_in_the_containers_environment_or_command_lines(stack) -> None:
    c = stack.connection
    containers = stack.containers()
    assert {x.labels["io.tcel.service"] for x in containers} >= {"broker", "backend", "worker"}
    for container in containers:
        config = container.attrs["Config"]
        shown = json.dumps([config["Cmd"], config["Env"], config["Entrypoint"], container.attrs["Args"]])
        assert c.backend_password not in shown and c.broker_password not in shown, container.name


def test_credentials_are_random_long_and_owner_only(stack) -> None:
    c = stack.connection
    assert c.broker_user != "guest"
    assert len(c.broker_password) >= 24 and len(c.backend_password) >= 24 and c.broker_password != c.backend_password
    path = state_file(resolve_project(stack.directory, stack.name))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_no_output_shows_a_password(stack) -> None:
    c = stack.connection
    outputs = [stack.tcel(*args) for args in (["up"], ["up", "--json"], ["status"], ["status", "--json"])]
    text = "".join(r.stdout + r.stderr for r in outputs)
    assert c.broker_password not in text and c.backend_password not in text
    assert c.broker_password[:2] + "…" in text


def test_worker_runs_as_a_non_root_user(stack) -> None:
    worker = stack.engine.containers.get(f"tcel-{stack.name}-worker-1")
    code, output = worker.exec_run(["id", "-u"])
    assert code == 0 and output.decode().strip() != "0"
    assert worker.attrs["Config"]["User"] == "user"  # the image's USER: every process of the container


def test_worker_accepts_json_only(stack) -> None:
    from celery import Celery

    c = stack.connection
    client = Celery("pickler", broker=c.broker_url(), backend=c.backend_url())
    client.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
    try:
        pickled = client.send_task("tasks.tsum", args=[[1, 2]])
    finally:
        client.close()
    time.sleep(2)
    record = stack.tcel_json("results", "--limit", "50")["tasks"]
    assert pickled.id not in [t["id"] for t in record], "a pickled message must never reach a task"
    logs = stack.tcel("logs", "worker", "--tail", "50").stdout
    assert "untrusted content" in logs or "ContentDisallowed" in logs


def test_tcel_leaves_unlabelled_containers_alone(project) -> None:

    assert project.tcel("up", "--no-wait").code == 0
    image = project.containers()[0].image
    stranger = project.engine.containers.create(image, name=f"tcel-{project.name}-stranger", command=["true"])
    try:
        assert project.tcel("down", "--volumes").code == 0
        stranger.reload()
        assert stranger.status == "created"
        assert project.containers() == []
    finally:
        stranger.remove(force=True, v=True)  # its image declares a volume: remove that too
