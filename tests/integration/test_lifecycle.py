"""The stack's lifecycle on the real engine: up, up again, repair, status, down."""

from __future__ import annotations

import json
import socket

from celery_cli import credentials
from celery_cli.names import LABEL_SERVICE
from celery_cli.settings import resolve_project


def services_of(project) -> dict[str, str]:
    return {c.name: c.labels[LABEL_SERVICE] for c in project.containers()}


def test_up_again_repair_status_and_down(project) -> None:
    first = project.tcel_json("up")
    assert first["ready"] is True
    assert sorted(first["created"]) == sorted(
        [f"tcel-{project.name}-broker", f"tcel-{project.name}-backend", f"tcel-{project.name}-worker-1"]
    )
    assert sorted(services_of(project).values()) == ["backend", "broker", "worker"]
    assert all(c.status == "running" for c in project.containers())

    again = project.tcel("up")
    assert again.code == 0
    assert "already up; nothing changed" in again.stderr

    status = project.tcel_json("status")
    assert [s["service"] for s in status["services"]] == ["broker", "backend", "worker"]
    assert all(s["state"] == "running" and s["ready"] is True for s in status["services"])
    broker_port = project.env["TCEL_BROKER_PORT"]
    assert status["services"][0]["ports"] == [f"127.0.0.1:{broker_port}->5672/tcp"]

    table = project.tcel("status")
    assert table.code == 0
    for word in ("broker", "backend", "worker", "running", f"127.0.0.1:{broker_port}"):
        assert word in table.stdout

    # a partial failure: one worker gone, the backend stopped; up repairs exactly that
    project.engine.containers.get(f"tcel-{project.name}-worker-1").remove(force=True)
    project.engine.containers.get(f"tcel-{project.name}-backend").stop(timeout=5)
    repaired = project.tcel_json("up")
    assert repaired["created"] == [f"tcel-{project.name}-worker-1"]
    assert repaired["started"] == [f"tcel-{project.name}-backend"]
    assert repaired["ready"] is True

    down = project.tcel("down")
    assert down.code == 0
    assert project.containers() == [] and project.networks() == []
    assert len(project.volumes()) == 3, "down keeps the data volumes and the copy of the state"
    not_up = project.tcel("status")
    assert not_up.code == 8 and "not up" in not_up.stderr

    gone = project.tcel_json("down", "--volumes")
    assert gone["containers"] == [] and len(gone["volumes"]) == 3
    assert project.volumes() == []


def test_secrets_are_kept_owner_only_and_never_printed(project) -> None:
    up = project.tcel("up", "--no-wait")
    assert up.code == 0, up.stderr
    saved = credentials.load(resolve_project(project.directory, project.name))
    assert saved is not None
    printed = up.stdout + up.stderr + project.tcel("status", "--json").stdout + project.tcel("up", "--json").stdout
    for secret in (saved.broker_password, saved.backend_password):
        assert secret not in printed


def test_taken_port_is_named_and_nothing_is_left_behind(project) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = project.tcel("up", "--broker-port", str(port))
    assert result.code == 5
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"error: port {port} on 127.0.0.1 for the broker is already in use: "
        "choose another with --broker-port or TCEL_BROKER_PORT"
    )
    assert "Traceback" not in result.stderr
    assert project.containers() == [] and project.networks() == [] and project.volumes() == []


def test_unknown_image_is_a_clear_error_and_nothing_is_left_behind(project) -> None:
    result = project.tcel("up", "--broker-image", "tcel-test/no-such-image:0")
    assert result.code == 7
    assert "cannot pull image tcel-test/no-such-image:0" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert project.containers() == [] and project.networks() == []


def test_a_taken_default_port_is_replaced_and_kept_for_the_project(project) -> None:
    defaults = {"TCEL_BROKER_PORT": "", "TCEL_BACKEND_PORT": ""}
    for key in defaults:
        project.env.pop(key)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # if someone else listens on 5672, it is taken all the same
            squatter.bind(("127.0.0.1", 5672))
            squatter.listen()
        except OSError:
            pass
        up = project.tcel("up", "--no-wait", "--json")
        assert up.code == 0, up.stderr
        first = json.loads(up.stdout)
        assert first["broker"]["port"] != 5672
        assert any("port 5672 on 127.0.0.1 is taken" in note for note in first["notes"])
    assert project.tcel("down").code == 0
    again = project.tcel_json("up", "--no-wait")
    assert again["broker"]["port"] == first["broker"]["port"], "kept across down and up"
    assert again["backend"]["port"] == first["backend"]["port"]


def test_a_broker_volume_of_another_rabbitmq_is_refused_before_anything_starts(project) -> None:
    import io

    assert project.tcel("up", "--no-wait").code == 0
    assert project.tcel("down").code == 0
    broker_image = project.engine.images.get(_broker_image())
    other, _ = project.engine.images.build(
        fileobj=io.BytesIO(f"FROM {broker_image.id}\nENV RABBITMQ_VERSION=0.1.0\n".encode()),
        tag=f"tcel-test/rabbitmq-other:{project.name}",
        rm=True,
    )
    try:
        refused = project.tcel("up", "--no-wait", "--broker-image", f"tcel-test/rabbitmq-other:{project.name}")
        assert refused.code == 1
        line = refused.stderr.strip().splitlines()[-1]
        assert f"volume tcel-{project.name}-broker-data was written by" in line
        assert "RabbitMQ 0.1.0" in line and "'tcel down --volumes'" in line and "--broker-image" in line
        assert project.containers() == [], "nothing was started"
    finally:
        project.engine.images.remove(other.id, force=True)


def _broker_image() -> str:
    from celery_cli.settings import setting

    return setting("TCEL_BROKER_IMAGE")


def test_scale_runs_workers_the_way_up_started_them(project) -> None:
    """`up --concurrency 2` then `scale 2`: no rebuild, the same image, and the new worker has 2 processes."""
    assert project.tcel("up", "--concurrency", "2").code == 0
    image = {c.name: c.image.id for c in project.containers() if c.labels["io.tcel.service"] == "worker"}
    scaled = project.tcel_json("scale", "2")
    assert scaled["built"] is False and scaled["removed"] == []
    workers = [c for c in project.containers() if c.labels["io.tcel.service"] == "worker"]
    assert {c.image.id for c in workers} == set(image.values())
    assert all("CELERY_WORKER_CONCURRENCY=2" in c.attrs["Config"]["Env"] for c in workers)
    # every container comes back after a crash or an engine restart, and its logs are rotated
    for c in project.containers():
        host = c.attrs["HostConfig"]
        assert host["RestartPolicy"]["Name"] == "unless-stopped", c.name
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}, c.name
    assert scaled["workers"] == ["celery@worker-1", "celery@worker-2"]
    # a stopped worker's report stays in Redis (it is stopped cold, with no time to take it back): up reads
    # only the reports of the workers that answered
    assert project.tcel_json("scale", "1")["workers"] == ["celery@worker-1"]
