"""`tcel up --swarm --flower` on the lab: Flower as a Swarm service beside the others, on the data node, behind
its login, listing every worker as soon as `up` returns, its secrets Docker secrets; `up` without --flower
leaves it alone and `down` removes it. The project is not tcel's template but a package app laid out as
Celery's "Next Steps" guide lays it out (broker and backend hard-coded to localhost and rpc://, no Dockerfile):
its workers on Swarm use the stack's broker and backend, and Flower sees its tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from celery_cli.names import LABEL_PROJECT, LABEL_SERVICE
from celery_cli.settings import setting
from tests.conftest import StackProject, free_port, make_project
from tests.integration.test_any_project import package_app
from tests.integration.test_flower import flower_task, get, login
from tests.swarm.conftest import Lab, swarm_lab

pytestmark = pytest.mark.swarm

WORKERS = 3


@pytest.fixture(scope="module")
def flower_swarm(lab: Lab, tmp_path_factory) -> Iterator[StackProject]:
    """One project on Swarm with Flower and 3 workers over the lab's nodes; `down` afterwards."""
    loaded = swarm_lab("load", setting("TCEL_REGISTRY_IMAGE"))  # every node runs a registry mirror from it
    assert loaded.returncode == 0, loaded.stderr
    with make_project(lab.engine, tmp_path_factory.mktemp("swarm-flower")) as project:
        project.env["TCEL_FLOWER_PORT"] = str(free_port())
        project.env["TCEL_METRICS_PORT"] = str(free_port())
        package_app(project.directory)
        with (project.directory / "proj" / "celery.py").open("a") as config:  # one periodic entry, for the beat
            config.write(
                "app.conf.beat_schedule = {'tick': {'task': 'proj.tasks.add', 'schedule': 1.0, 'args': (1, 1)}}\n"
            )
        try:
            up = project.tcel("up", "--swarm", "--flower", "--beat", "--metrics", "--workers", str(WORKERS))
            assert up.code == 0, up.stderr
            assert "app      proj (found in proj/celery.py)" in up.stderr, up.stderr
            project.up_stderr = up.stderr
            yield project
        finally:
            project.tcel("down", "--volumes")


def services(lab: Lab, project: StackProject) -> dict:
    found = lab.engine.services.list(filters={"label": f"{LABEL_PROJECT}={project.name}"})
    return {s.attrs["Spec"]["Labels"][LABEL_SERVICE]: s for s in found}


def test_flower_runs_as_a_service_on_the_data_node_published_there(lab: Lab, flower_swarm: StackProject) -> None:
    flower = services(lab, flower_swarm)["flower"]
    access = flower_swarm.connection
    assert flower.name == f"tcel-{flower_swarm.name}-flower"
    assert flower.attrs["Spec"]["Labels"]["io.tcel.project"] == flower_swarm.name
    endpoint = flower.attrs["Spec"]["EndpointSpec"]
    assert endpoint["Mode"] == "dnsrr"
    assert endpoint["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 5555, "PublishedPort": access.flower_port, "PublishMode": "host"}
    ]
    assert (
        f"Swarm publishes Flower's port {access.flower_port} on every interface of the data node"
        in flower_swarm.up_stderr
    )
    assert flower.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith("127.0.0.1:")  # the registry's
    view = flower_swarm.tcel_json("status")
    shown = [s for s in view["services"] if s["service"] == "flower"]
    assert len(shown) == 1 and shown[0]["state"] == "running" and shown[0]["ready"] is True, shown
    assert shown[0]["node"] == lab.engine.info()["Name"]  # the data node: the manager, by default
    assert shown[0]["url"] == f"https://127.0.0.1:{access.flower_port}/"  # a stack on Swarm serves TLS
    assert view["healthy"] is True


def test_flower_answers_behind_its_login_and_lists_every_worker_once_up_returns(flower_swarm: StackProject) -> None:
    user, password = login(flower_swarm)
    assert get(flower_swarm, "/healthcheck") == (200, b"OK")
    assert get(flower_swarm, "/healthcheck", (user, password))[0] == 200
    for path in ("/", "/api/workers", "/metrics"):
        assert get(flower_swarm, path)[0] == 401, path
        assert get(flower_swarm, path, (user, password + "x"))[0] == 401, path
    status, body = get(flower_swarm, "/api/workers?status=1", (user, password))
    assert status == 200
    assert json.loads(body) == {f"celery@worker-{n}": True for n in range(1, WORKERS + 1)}
    done = flower_swarm.tcel_json("call", "proj.tasks.add", "2", "3", "--wait")
    assert done["result"] == 5
    info = flower_task(flower_swarm, done["id"])
    assert info.get("name") == "proj.tasks.add", info
    assert info.get("state") == "SUCCESS" and info["worker"] == flower_swarm.tcel_json("result", done["id"])["worker"]


def test_the_beat_runs_as_one_service_on_the_data_node_and_sends_its_entry(
    lab: Lab, flower_swarm: StackProject
) -> None:
    import time

    beat = services(lab, flower_swarm)["beat"]
    assert beat.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}
    container = beat.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    access = flower_swarm.connection
    for secret in (access.broker_password, access.backend_password):
        assert secret not in json.dumps(container)
    deadline, tick = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        tick = {e["name"]: e for e in flower_swarm.tcel_json("beat")["entries"]}.get("tick", {})
        if tick.get("total_runs", 0) >= 2:
            break
        time.sleep(1)
    assert tick.get("total_runs", 0) >= 2 and tick["task"] == "proj.tasks.add", tick
    view = flower_swarm.tcel_json("status")
    (shown,) = [s for s in view["services"] if s["service"] == "beat"]
    assert shown["state"] == "running" and shown["node"] == lab.engine.info()["Name"], shown
    assert view["beat"]["running"] is True
    sent = flower_swarm.tcel_json("results", "-n", "50")["tasks"]
    assert any(t.get("periodic") == "tick" and t["state"] == "SUCCESS" for t in sent), sent


def test_the_exporter_runs_on_the_data_node_behind_its_login_and_sees_every_worker_and_queue(
    lab: Lab, flower_swarm: StackProject
) -> None:
    from tests.integration.test_metrics import scrape, scrape_until

    exporter = services(lab, flower_swarm)["metrics"]
    access = flower_swarm.connection
    spec = json.dumps(exporter.attrs["Spec"])
    for secret in (access.metrics_password, access.broker_password, access.backend_password):
        assert secret not in spec
    (task,) = [t for t in exporter.tasks() if t["DesiredState"] == "running"]
    assert task["NodeID"] == lab.engine.info()["Swarm"]["NodeID"]
    assert scrape(flower_swarm, None)[0] == 401
    sent = flower_swarm.tcel("call", "proj.tasks.add", "1", "2", "--queue", "idle", "--quiet")
    assert sent.code == 0, sent.stderr
    wanted = ['tcel_queue_messages_ready{queue="idle"} 1.0']
    wanted += [f'tcel_worker_up{{worker="celery@worker-{slot}"}} 1.0' for slot in range(1, WORKERS + 1)]
    status, text, missing = scrape_until(flower_swarm, (access.metrics_user, access.metrics_password), wanted)
    assert status == 200 and missing == [], text


def test_flowers_secrets_are_docker_secrets_not_environment_or_command(lab: Lab, flower_swarm: StackProject) -> None:
    access = flower_swarm.connection
    spec = services(lab, flower_swarm)["flower"].attrs["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    shown = json.dumps({key: container.get(key) for key in ("Env", "Args", "Command")})
    for secret in (access.flower_password, access.broker_password, access.backend_password):
        assert secret not in shown and secret not in json.dumps(spec)
    assert sorted(s["File"]["Name"] for s in container["Secrets"]) == [
        "/run/secrets/celery_broker_url",
        "/run/secrets/celery_result_backend_url",
        "/run/secrets/tcel_ca.crt",  # a stack on Swarm serves TLS: the authority, Flower's certificate and key
        "/run/secrets/tcel_flower_basic_auth",
        "/run/secrets/tcel_tls.crt",
        "/run/secrets/tcel_tls.key",
    ]


def test_flower_command_prints_where_flower_answers(flower_swarm: StackProject) -> None:
    shown = flower_swarm.tcel("flower")
    assert shown.code == 0, shown.stderr
    assert shown.stdout.strip() == flower_swarm.connection.flower_url()
    assert flower_swarm.connection.flower_user in shown.stderr


def test_up_without_flower_leaves_the_flower_service_alone(lab: Lab, flower_swarm: StackProject) -> None:
    before = services(lab, flower_swarm)["flower"]
    report = flower_swarm.tcel_json("up")
    assert report["flower"]["url"] == flower_swarm.connection.flower_url()
    after = services(lab, flower_swarm)["flower"]
    assert (after.id, after.version) == (before.id, before.version)


def test_down_removes_flower_and_its_secrets(lab: Lab, flower_swarm: StackProject) -> None:
    down = flower_swarm.tcel("down", "--volumes")
    assert down.code == 0, down.stderr
    label = {"label": f"{LABEL_PROJECT}={flower_swarm.name}"}
    assert lab.engine.services.list(filters=label) == []
    assert lab.engine.secrets.list(filters=label) == []
    gone = flower_swarm.tcel("flower")
    assert gone.code != 0 and "runs no Flower" in gone.stderr
