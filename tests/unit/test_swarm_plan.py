"""The Swarm engine's plan of `up`, decided without a Docker engine: which node holds the data, which ports the
services publish, what the project's state keeps, and what changes on a running worker service."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from celery_cli import credentials
from celery_cli.errors import NotRunning, TcelError, UsageError
from celery_cli.names import LABEL_FILES
from celery_cli.settings import Project
from celery_cli.stack import specs
from celery_cli.stack.base import UpOptions
from celery_cli.stack.swarm.docker_api import Node, Service
from celery_cli.stack.swarm.plan import plan, worker_change

OPTIONS = UpOptions("127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim")
SAVED = credentials.Credentials("tcel", "broker-secret-password", "backend-secret-password", broker_port=25672)
FRESH = credentials.Credentials("tcel", "fresh-broker-password", "fresh-backend-password")


def node(hostname: str, address: str = "10.0.0.2") -> Node:
    return Node(
        SimpleNamespace(id=f"id-{hostname}", attrs={"Description": {"Hostname": hostname}, "Status": {"Addr": address}})
    )


def service(kind: str, published: int | None = None, made_with: credentials.Credentials | None = SAVED) -> Service:
    """A running service; a broker or backend made with the files (logins) `made_with` gives, None: by a tcel
    from before each service had its own user (no files label)."""
    ports = [{"PublishedPort": published, "TargetPort": 1, "Protocol": "tcp"}] if published else []
    labels = {"io.tcel.service": kind}
    if kind in ("broker", "backend") and made_with is not None:
        spec = getattr(specs, kind)(Project(name="any", directory=Path()), OPTIONS, made_with)
        labels[LABEL_FILES] = spec.labels(Project(name="any", directory=Path()))[LABEL_FILES]
    attrs = {"Spec": {"Labels": labels, "EndpointSpec": {"Ports": ports}}}
    return Service(SimpleNamespace(attrs=attrs))


def project(tmp_path) -> Project:
    return Project(name="demo", directory=tmp_path)


def test_a_first_up_takes_fresh_credentials_the_default_ports_and_remembers_swarm_and_the_data_node(tmp_path) -> None:
    planned = plan(project(tmp_path), OPTIONS, {}, {}, None, FRESH, node("manager"), here=False)
    access = planned.credentials
    assert (access.broker_password, access.bind, access.broker_port, access.backend_port) == (
        "fresh-broker-password",
        "10.0.0.2",  # the data node is elsewhere: the host reaches it at its address
        5672,
        6379,
    )
    assert planned.settings["TCEL_ENGINE"] == "swarm" and planned.settings["TCEL_DATA_NODE"] == "manager"
    assert not planned.with_flower and planned.notes == []


def test_running_services_keep_their_published_ports_and_the_kept_credentials(tmp_path) -> None:
    existing = {"broker": service("broker", 15672), "backend": service("backend", 16379)}
    kept = {"TCEL_DATA_NODE": "manager", "TCEL_REGISTRY_PORT": "5001"}
    planned = plan(project(tmp_path), OPTIONS, existing, kept, SAVED, FRESH, node("manager"), here=False)
    assert (planned.credentials.broker_port, planned.credentials.backend_port) == (15672, 16379)
    assert planned.credentials.broker_password == "broker-secret-password"
    assert planned.registry_port == "5001"


def test_a_port_taken_on_this_machine_moves_to_a_free_one_with_a_note_unless_asked(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kept = replace(SAVED, broker_port=port)
        planned = plan(project(tmp_path), OPTIONS, {}, {}, kept, FRESH, node("manager"), here=True)
        assert planned.credentials.bind == "0.0.0.0" and planned.credentials.broker_port != port
        # (the backend's saved port, 6379, may be taken on this machine too: only the broker's note is checked)
        broker_notes = [note for note in planned.notes if "the broker uses" in note]
        assert len(broker_notes) == 1 and f"port {port} is taken: the broker uses" in broker_notes[0]
        asked = replace(OPTIONS, broker_port=port)  # what the user asks for is used (Swarm refuses it if taken)
        assert (
            plan(project(tmp_path), asked, {}, {}, kept, FRESH, node("manager"), here=True).credentials.broker_port
            == port
        )
        elsewhere = plan(project(tmp_path), OPTIONS, {}, {}, kept, FRESH, node("node-1"), here=False)
        assert elsewhere.credentials.broker_port == port and elsewhere.notes == []  # this machine says nothing of it


def test_a_running_broker_is_not_moved_to_another_data_node(tmp_path) -> None:
    existing = {"broker": service("broker", 5672)}
    with pytest.raises(UsageError) as refused:
        plan(project(tmp_path), OPTIONS, existing, {"TCEL_DATA_NODE": "manager"}, SAVED, FRESH, node("node-1"), False)
    assert "keeps its broker data on node manager" in str(refused.value)
    # with nothing running, the data node may change
    assert plan(project(tmp_path), OPTIONS, {}, {"TCEL_DATA_NODE": "manager"}, SAVED, FRESH, node("node-1"), False)


def test_scale_needs_a_running_broker_and_backend_and_never_adds_flower(tmp_path) -> None:
    workers_only = replace(OPTIONS, workers_only=True, flower=True)
    with pytest.raises(NotRunning):
        plan(project(tmp_path), workers_only, {"broker": service("broker", 5672)}, {}, SAVED, FRESH, node("m"), False)
    running = {
        "broker": service("broker", 5672),
        "backend": service("backend", 6379),
        "flower": service("flower", 5555),
    }
    assert not plan(project(tmp_path), workers_only, running, {}, SAVED, FRESH, node("m"), False).with_flower


def test_flower_is_kept_once_it_runs_with_its_published_port(tmp_path) -> None:
    running = {"flower": service("flower", 15555)}
    planned = plan(project(tmp_path), OPTIONS, running, {}, SAVED, FRESH, node("m"), here=False)
    assert planned.with_flower and planned.credentials.flower_port == 15555 and planned.credentials.flower_password


def test_what_changes_on_a_running_worker_service() -> None:
    running = {"CELERY_WORKER_CONCURRENCY": "2", "CELERY_WORKER_QUEUES": "a"}
    same = worker_change("reg/w:1", running, 2, dict(running), "reg/w:1", OPTIONS)
    assert (same.image, same.settings, same.replicas) == (None, {}, (2, 2))  # queues and count kept unless asked
    moved = worker_change(
        "reg/w:1", running, 2, {"CELERY_WORKER_CONCURRENCY": "4"}, "reg/w:2", replace(OPTIONS, workers=3)
    )
    assert moved.image == "reg/w:2" and moved.replicas == (2, 3)
    assert moved.settings == {"CELERY_WORKER_CONCURRENCY": "4"}
    assert moved.described == ["new image", "concurrency 4"]
    dropped = worker_change("i", running, 1, {}, "i", replace(OPTIONS, queues=()))
    assert dropped.described == ["concurrency as the image's default", "queues as the image's default"]


def test_the_autoscalers_policy_is_kept_and_scale_keeps_the_one_that_runs(tmp_path) -> None:
    planned = plan(project(tmp_path), replace(OPTIONS, autoscale="1:3:5:30"), {}, {}, None, FRESH, node("m"), False)
    assert planned.autoscale == "1:3:5:30" and planned.settings["TCEL_AUTOSCALE"] == "1:3:5:30"
    running = {"broker": service("broker", 5672), "backend": service("backend", 6379)}
    running["autoscaler"] = service("autoscaler")
    running["autoscaler"].raw.attrs["Spec"]["Labels"]["io.tcel.autoscale"] = "2:4:5:30"
    workers_only = replace(OPTIONS, workers_only=True, autoscale="")
    assert plan(project(tmp_path), workers_only, running, {}, SAVED, FRESH, node("m"), False).autoscale == "2:4:5:30"


ROLES_SAVED = SAVED.with_role_passwords()


@pytest.mark.parametrize("workers_only", [False, True], ids=["up", "scale"])
def test_a_broker_and_backend_made_before_the_roles_are_refused_with_down_then_up(tmp_path, workers_only) -> None:
    """`up` keeps a running broker and backend service: made by a tcel from before each service had its own user,
    they would never let the new workers in (the backend's readiness timed out). Refused, naming both and the way
    out that keeps the data; `scale` too."""
    options = replace(OPTIONS, workers_only=workers_only)
    old = {"broker": service("broker", 5672, made_with=None), "backend": service("backend", 6379, made_with=None)}
    with pytest.raises(TcelError, match=r"made with other logins") as refused:
        plan(project(tmp_path), options, old, {}, ROLES_SAVED, FRESH, node("m"), False)
    message = str(refused.value)
    assert "tcel-demo-broker and tcel-demo-backend were" in message and "workers could not log in" in message
    assert "'tcel down'" in message and "then 'tcel up'" in message and "--volumes" not in message
    assert "\n" not in message
    # made with the roles this state names: planned as before
    current = {"broker": service("broker", 5672, ROLES_SAVED), "backend": service("backend", 6379, ROLES_SAVED)}
    assert plan(project(tmp_path), options, current, {}, ROLES_SAVED, FRESH, node("m"), False).credentials


def test_a_state_file_that_lost_the_roles_passwords_is_refused_while_the_backend_runs_with_them(tmp_path) -> None:
    """The state's roles are new passwords (with_role_passwords) that the running backend does not know."""
    running = {"backend": service("backend", 6379, ROLES_SAVED)}
    renewed = SAVED.with_role_passwords()
    with pytest.raises(TcelError, match=r"tcel-demo-backend was made with other logins"):
        plan(project(tmp_path), OPTIONS, running, {}, renewed, FRESH, node("m"), False)
