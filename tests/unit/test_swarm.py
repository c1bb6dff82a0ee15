"""The swarm engine's decisions that need no engine: whether to initialise a swarm, which engine a project's
stack runs on, and how passwords leave a service's environment for files (Docker secrets)."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from celery_cli import credentials
from celery_cli.errors import ExitCode, TcelError, UsageError
from celery_cli.settings import Project
from celery_cli.stack.base import UpOptions
from celery_cli.stack.choice import engine_name, refuse_other_engine
from celery_cli.stack.specs import RABBITMQ_USER_CONF, REDIS_CONF, backend, broker, secrets_in_files, worker
from celery_cli.stack.swarm.plan import membership, refuse_data_node_move, setting_changes
from celery_cli.stack.swarm.plan import published_note as _published_note
from tests.conftest import REPO

MANAGER = {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}
WORKER = {"Swarm": {"LocalNodeState": "active", "ControlAvailable": False}}
OUTSIDE = {"Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False}}
OPTIONS = UpOptions("127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim")
ACCESS = credentials.Credentials("tcel", "broker-secret-password", "backend-secret-password")


@pytest.mark.parametrize("init", [False, True])
def test_a_manager_is_used_as_it_is(init: bool) -> None:
    assert membership(MANAGER, init) is False


def test_an_engine_in_no_swarm_is_initialised_only_when_asked() -> None:
    assert membership(OUTSIDE, init=True) is True
    with pytest.raises(UsageError) as refused:
        membership(OUTSIDE, init=False)
    assert refused.value.exit_code == ExitCode.USAGE
    assert "tcel up --swarm --init" in str(refused.value)


@pytest.mark.parametrize("init", [False, True])
def test_a_worker_node_is_refused_even_with_init(init: bool) -> None:
    with pytest.raises(UsageError, match="worker of a swarm"):
        membership(WORKER, init)


def test_a_locked_swarm_is_reported() -> None:
    with pytest.raises(TcelError, match="locked"):
        membership({"Swarm": {"LocalNodeState": "locked"}}, init=True)


def test_the_engine_is_asked_then_env_then_remembered(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.delenv("TCEL_ENGINE", raising=False)
    project = Project("enginetest", tmp_path)
    assert engine_name(project) == "containers"
    credentials.save(project, ACCESS, {"TCEL_ENGINE": "swarm"})
    assert engine_name(project) == "swarm"
    assert engine_name(project, "containers") == "containers"
    monkeypatch.setenv("TCEL_ENGINE", "containers")
    assert engine_name(project) == "containers"
    monkeypatch.setenv("TCEL_ENGINE", "kubernetes")
    with pytest.raises(UsageError, match="kubernetes"):
        engine_name(project)


def test_no_password_stays_in_any_service_environment_or_command(tmp_path: Path) -> None:
    project = Project("secrets", tmp_path)
    for spec in (broker(project, OPTIONS, ACCESS), backend(project, OPTIONS, ACCESS), worker(1, OPTIONS, ACCESS, "w")):
        moved = secrets_in_files(spec)
        shown = repr((moved.environment, moved.command))
        assert ACCESS.broker_password not in shown and ACCESS.backend_password not in shown, spec.service
    assert (
        b"default_pass = broker-secret-password"
        in secrets_in_files(broker(project, OPTIONS, ACCESS)).files[RABBITMQ_USER_CONF]
    )
    redis_conf = secrets_in_files(backend(project, OPTIONS, ACCESS)).files[REDIS_CONF]
    assert b"user default off" in redis_conf and b"requirepass" not in redis_conf
    assert b"backend-secret-password" not in redis_conf
    assert f"user tcel on #{hashlib.sha256(b'backend-secret-password').hexdigest()} ".encode() in redis_conf


def test_the_worker_config_reads_its_urls_from_the_secret_files(tmp_path: Path, monkeypatch) -> None:
    spec = secrets_in_files(worker(1, OPTIONS, ACCESS, "w"))
    for key, value in spec.environment.items():
        monkeypatch.setenv(key, value)
    for path, content in spec.files.items():  # the files Swarm mounts, here under tmp_path
        (tmp_path / Path(path).name).write_bytes(content)
        monkeypatch.setenv(next(k for k, v in spec.environment.items() if v == path), str(tmp_path / Path(path).name))
    loaded = importlib.util.spec_from_file_location("celeryconfig_under_test", REPO / "celeryconfig.py")
    config = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(config)
    assert config.broker_url == ACCESS.broker_url("broker", 5672)
    assert config.result_backend == ACCESS.backend_url("backend", 6379)


def test_up_on_one_engine_is_refused_while_the_stack_runs_on_the_other(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.delenv("TCEL_ENGINE", raising=False)
    project = Project("switch", tmp_path)
    refuse_other_engine(project, "swarm", [])  # nothing on the other engine: go ahead
    with pytest.raises(UsageError) as refused:
        refuse_other_engine(project, "swarm", ["tcel-switch-backend", "tcel-switch-broker", "tcel-switch-worker-1"])
    assert refused.value.exit_code == ExitCode.USAGE
    line = str(refused.value)
    assert "stack switch runs as plain containers on this Docker engine" in line and "tcel-switch-worker-1" in line
    assert "not as Swarm services" in line and "run 'tcel down' first" in line and "\n" not in line
    credentials.save(project, ACCESS, {"TCEL_ENGINE": "swarm"})
    with pytest.raises(UsageError, match=r"runs as Swarm services .* not as plain containers: run 'tcel down'"):
        refuse_other_engine(project, "containers", ["tcel-switch-worker"])
    # the environment asks for plain containers: a bare `tcel down` would look for them, so the hint says how
    monkeypatch.setenv("TCEL_ENGINE", "containers")
    with pytest.raises(UsageError, match="run 'TCEL_ENGINE=swarm tcel down' first"):
        refuse_other_engine(project, "containers", ["tcel-switch-worker"])


def test_a_running_broker_and_backend_are_not_moved_to_another_data_node(tmp_path: Path) -> None:
    project = Project("moving", tmp_path)
    refuse_data_node_move(project, "manager", "manager", ["backend", "broker"])  # the same node
    refuse_data_node_move(project, "manager", "node-1", [])  # after `down`: up on the new node, empty volumes there
    refuse_data_node_move(project, None, "node-1", ["broker"])  # nothing kept to compare with
    with pytest.raises(UsageError) as refused:
        refuse_data_node_move(project, "manager", "node-1", ["backend", "broker"])
    line = str(refused.value)
    assert refused.value.exit_code == ExitCode.USAGE
    assert "stack moving keeps its backend and broker data on node manager" in line
    assert "'tcel down' (the data stays in the volumes on manager), then 'tcel up --swarm --data-node node-1'" in line


def running_worker(*env: str) -> dict[str, str]:
    """The environment of a running worker service, as its spec lists it."""
    return dict(item.partition("=")[::2] for item in env)


def _setting_changes(running: dict[str, str], spec: object, keep_queues: bool) -> dict[str, str | None]:
    return setting_changes(running, spec.environment, keep_queues)


def test_concurrency_and_queue_changes_of_a_running_worker_service_are_found() -> None:
    running = running_worker("CELERY_BROKER_URL=", "CELERY_WORKER_CONCURRENCY=2", "CELERY_WORKER_QUEUES=a,b")
    same = worker(0, replace(OPTIONS, concurrency=2, queues=("a", "b")), ACCESS, "w")
    assert _setting_changes(running, same, keep_queues=False) == {}
    more = worker(0, replace(OPTIONS, concurrency=4), ACCESS, "w")
    assert _setting_changes(running, more, keep_queues=True) == {"CELERY_WORKER_CONCURRENCY": "4"}
    assert _setting_changes(running, more, keep_queues=False) == {
        "CELERY_WORKER_CONCURRENCY": "4",
        "CELERY_WORKER_QUEUES": None,
    }
    other = worker(0, replace(OPTIONS, concurrency=2, queues=("c",)), ACCESS, "w")
    assert _setting_changes(running, other, keep_queues=False) == {"CELERY_WORKER_QUEUES": "c"}


def test_up_names_every_port_swarm_publishes_on_every_interface() -> None:
    assert _published_note("manager", None).endswith("every interface of the data node manager")
    assert _published_note("manager", "5001").endswith("and the registry's port 5001 on every interface of every node")


def test_the_refusal_of_an_engine_in_no_swarm_names_both_ways_out() -> None:
    with pytest.raises(UsageError) as refused:
        membership(OUTSIDE, init=False)
    assert "tcel up --swarm --init" in str(refused.value)
    assert "TCEL_ENGINE=containers tcel up" in str(refused.value)
