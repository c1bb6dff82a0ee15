"""The workers' pool limits (--max-tasks-per-child, --max-memory-per-child) and what `status` shows of each
worker's memory, decided without an engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from celery_cli import credentials
from celery_cli.names import LABEL_CHILD_LIMITS
from celery_cli.remote_control import max_tasks_per_child, peak_rss_kib
from celery_cli.stack.base import UpOptions
from celery_cli.stack.specs import worker
from celery_cli.stack.swarm.plan import setting_changes
from celery_cli.tables import inspection, kib

OPTIONS = UpOptions("127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim")
ACCESS = credentials.Credentials("tcel", "broker-secret-password", "backend-secret-password")
# the parts of a prefork worker's `inspect stats` reply these read, as Celery 5.7 sends them
STATS = {
    "pid": 7,
    "pool": {"max-concurrency": 2, "processes": [8, 9], "max-tasks-per-child": 50},
    "rusage": {"maxrss": 48128, "utime": 1.5},
    "total": {"tasks.add": 3},
}


def test_a_worker_runs_with_the_limits_asked_for_in_celerys_own_variables() -> None:
    spec = worker(1, replace(OPTIONS, max_tasks_per_child=50, max_memory_per_child=200_000), ACCESS, "w")
    assert spec.environment["CELERY_WORKER_MAX_TASKS_PER_CHILD"] == "50"
    assert spec.environment["CELERY_WORKER_MAX_MEMORY_PER_CHILD"] == "200000"
    assert spec.labels(_project())[LABEL_CHILD_LIMITS] == "50,200000"
    plain = worker(1, OPTIONS, ACCESS, "w")
    assert not any("PER_CHILD" in key for key in plain.environment)
    assert plain.labels(_project())[LABEL_CHILD_LIMITS] == "0,0"


def test_a_swarm_worker_service_is_rolled_when_its_limits_change() -> None:
    running = {"CELERY_WORKER_MAX_TASKS_PER_CHILD": "50"}
    same = worker(0, replace(OPTIONS, max_tasks_per_child=50), ACCESS, "w").environment
    assert setting_changes(running, same, keep_queues=True) == {}
    other = worker(0, replace(OPTIONS, max_memory_per_child=1000), ACCESS, "w").environment
    assert setting_changes(running, other, keep_queues=True) == {
        "CELERY_WORKER_MAX_TASKS_PER_CHILD": None,
        "CELERY_WORKER_MAX_MEMORY_PER_CHILD": "1000",
    }


def test_the_limits_are_kept_until_given_again_and_zero_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    from celery_cli.commands.up_options import up_options
    from celery_cli.endpoints import Target

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    target = Target(project_dir=tmp_path, project_name="limitskept")
    credentials.save(target.project, credentials.generate(), {"TCEL_MAX_TASKS_PER_CHILD": "50"})
    assert up_options(target).max_tasks_per_child == 50
    assert up_options(target).max_memory_per_child is None
    assert up_options(target, max_tasks_per_child=7).max_tasks_per_child == 7
    assert up_options(target, max_tasks_per_child=0).max_tasks_per_child is None


def test_a_workers_memory_and_limit_are_read_from_its_stats() -> None:
    assert peak_rss_kib(STATS) == 48128
    assert max_tasks_per_child(STATS) == 50
    no_limit = {"pool": {"max-tasks-per-child": "N/A"}, "rusage": "N/A"}  # what a prefork pool says without one
    assert (peak_rss_kib(no_limit), max_tasks_per_child(no_limit)) == (None, None)
    assert [kib(812), kib(48128), kib(3 * 1024**2), kib(None)] == ["812 KiB", "47.0 MiB", "3.0 GiB", None]


def test_inspect_stats_shows_the_limit_and_the_memory() -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(inspection("stats", {"celery@worker-1": STATS}))
    text = console.export_text()
    assert "max tasks/child" in text and "peak memory" in text
    row = next(line for line in text.splitlines() if "celery@worker-1" in line)
    assert "50" in row and "47.0 MiB" in row


def _project():
    from celery_cli.settings import Project

    return Project("limits", Path("/nonexistent"))
