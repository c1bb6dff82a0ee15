"""tcel's worker side (celery_cli/worker_side/tcel_worker.py) on a project's app, run here on a throw-away app
module: tcel's safe settings go where the project leaves a setting to Celery, and a setting the project names
itself stays, whatever its value, and is reported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import worker_hooks
from celery_cli.stack.worker_image import WORKER_SIDE


def tcel_worker_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configure: str) -> ModuleType:
    name = f"someapp_{abs(hash(configure))}"
    (tmp_path / f"{name}.py").write_text(f"from celery import Celery\n\napp = Celery('someapp')\n{configure}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TCEL_APP", name)
    monkeypatch.setitem(sys.modules, "tcel_worker_hooks", worker_hooks)
    spec = importlib.util.spec_from_file_location(f"tcel_worker_{name}", WORKER_SIDE / "tcel_worker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_left_to_celery_get_tcel_s_safe_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = tcel_worker_on(tmp_path, monkeypatch, "")
    conf = worker.app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert (conf.accept_content, conf.task_track_started) == (["json"], True)
    assert worker.KEPT_BY_PROJECT == {}


@pytest.mark.parametrize(
    "configure",
    [
        "app.config_from_object({'task_acks_late': False})",
        "app.conf.update(task_acks_late=False)",
        "app.config_from_object({'CELERY_ACKS_LATE': False})",  # the old name
        "app.config_from_object({'CELERY_TASK_ACKS_LATE': False}, namespace='CELERY')",  # Django's namespace
    ],
)
def test_a_setting_the_project_names_stays_even_at_celery_s_default_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configure: str
) -> None:
    worker = tcel_worker_on(tmp_path, monkeypatch, configure)
    assert worker.app.conf.task_acks_late is False
    assert worker.KEPT_BY_PROJECT == {"task_acks_late": False}
    assert worker.app.conf.task_reject_on_worker_lost is True  # the others still get tcel's values


def test_a_setting_tcel_s_commands_rely_on_is_reported_when_the_project_changes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = tcel_worker_on(tmp_path, monkeypatch, "app.conf.task_track_started = False")
    assert worker.KEPT_BY_PROJECT == {"task_track_started": False}


def test_a_redis_broker_gets_tcel_s_transport_options_where_the_project_leaves_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TCEL_VISIBILITY_TIMEOUT", "10")
    own = tcel_worker_on(tmp_path, monkeypatch, "app.conf.broker_url = 'redis://broker:5672/0'")
    assert own.app.conf.broker_transport_options == {
        "visibility_timeout": 10,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    configure = "app.conf.broker_url = 'redis://b/0'\napp.conf.broker_transport_options = {'socket_timeout': None}"
    chosen = tcel_worker_on(tmp_path, monkeypatch, configure).app.conf.broker_transport_options
    assert chosen["socket_timeout"] is None and chosen["health_check_interval"] == 10  # the project's value stays
    rabbitmq = tcel_worker_on(tmp_path, monkeypatch, "app.conf.broker_url = 'amqp://broker//'")
    assert rabbitmq.app.conf.broker_transport_options == {}
