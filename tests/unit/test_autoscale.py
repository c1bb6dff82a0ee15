"""The autoscaler without an engine: its policy (hysteresis, no flapping, cool-down, bounds), the option that
sets it, its spec (secrets in files, the Docker socket), its state as `status` shows it, and one step of its
loop against a fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celery_cli import autoscaler, credentials, tables
from celery_cli.autoscale_policy import Look, Memory, Policy, decide, parse_bounds
from celery_cli.autoscale_state import AutoscaleState, read, write
from celery_cli.commands.up_options import autoscale_option
from celery_cli.errors import UsageError
from celery_cli.names import LABEL_AUTOSCALE
from celery_cli.overview import Overview
from celery_cli.settings import Project
from celery_cli.stack import specs
from tests.conftest import run_tcel

POLICY = Policy(minimum=1, maximum=4, threshold=5, cooldown=10, looks=2)


def run(policy: Policy, looks: list[tuple[float, int, int]], busy: int | None = None) -> list[int]:
    """The targets decided for looks of (time, ready, workers), each look's workers as given."""
    memory, targets = Memory(), []
    for at, ready, workers in looks:
        decision, memory = decide(policy, memory, Look(at, ready, workers, busy))
        targets.append(decision.target)
    return targets


def test_a_backlog_must_stay_above_the_threshold_for_the_looks_before_workers_are_added() -> None:
    assert run(POLICY, [(0, 20, 1)]) == [1]  # one look above 5/worker: hold
    assert run(POLICY, [(0, 20, 1), (1, 20, 1)]) == [1, 4]  # two: as many as 20/5, within the maximum


def test_workers_added_never_pass_the_maximum_and_at_least_one_is_added() -> None:
    assert run(POLICY, [(0, 1000, 1), (1, 1000, 1)]) == [1, 4]
    assert run(POLICY, [(0, 12, 2), (1, 12, 2)]) == [2, 3]  # 6/worker > 5: ceil(12/5) = 3
    assert run(POLICY, [(0, 1000, 4), (1, 1000, 4), (2, 1000, 4)]) == [4, 4, 4]


def test_a_backlog_that_dips_below_the_threshold_starts_the_count_again_so_it_does_not_flap() -> None:
    alternating = [(t, 20 if t % 2 == 0 else 3, 1) for t in range(20)]
    assert set(run(POLICY, alternating)) == {1}


def test_idle_workers_go_one_at_a_time_after_each_cool_down() -> None:
    looks = [(t, 0, 3) for t in range(10)] + [(10, 0, 3), (11, 0, 2), (20, 0, 2), (21, 0, 1), (40, 0, 1)]
    targets = run(POLICY, looks)
    assert targets[:10] == [3] * 10  # cooling down
    assert targets[10:] == [2, 2, 1, 1, 1]  # one removed per cool-down, never below the minimum


def test_busy_workers_or_a_small_backlog_are_never_idle() -> None:
    assert run(POLICY, [(t, 0, 3) for t in range(0, 30, 5)], busy=2) == [3] * 6
    assert run(POLICY, [(t, 2, 3) for t in range(0, 30, 5)]) == [3] * 6
    # a little backlog in the middle of the cool-down starts it again
    assert run(POLICY, [(0, 0, 2), (9, 1, 2), (15, 0, 2), (24, 0, 2), (25, 0, 2)]) == [2, 2, 2, 2, 1]


def test_a_worker_count_outside_the_bounds_is_brought_back_at_once() -> None:
    assert run(Policy(2, 3), [(0, 0, 1)]) == [2]
    assert run(Policy(2, 3), [(0, 50, 5)]) == [3]


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 6), st.integers(0, 3)), max_size=60))
def test_whatever_it_sees_it_stays_within_bounds_and_removes_at_most_one_at_a_time(
    looks: list[tuple[int, int, int]],
) -> None:
    policy, memory = Policy(1, 5, threshold=3, cooldown=5), Memory()
    at = 0.0
    for ready, workers, step in looks:
        at += step
        decision, memory = decide(policy, memory, Look(at, ready, workers))
        if policy.minimum <= workers <= policy.maximum:
            assert policy.minimum <= decision.target <= policy.maximum
            assert decision.target >= workers - 1
            assert decision.target <= workers or ready / workers > policy.threshold


@pytest.mark.parametrize("text", ["3", "3:1", "0:2", "a:b", "1:", ":2"])
def test_bounds_that_are_not_min_max_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bounds(text)


def test_the_option_makes_the_policy_and_refuses_what_does_not_fit() -> None:
    assert autoscale_option("1:3", 2, 5) == "1:3:2:5"
    assert autoscale_option("2:4", None, None) == "2:4:5:30"
    assert autoscale_option(None, None, None, off=True) == ""
    assert autoscale_option(None, None, None) is None
    with pytest.raises(UsageError):
        autoscale_option(None, 2, None)
    with pytest.raises(UsageError):
        autoscale_option("1:3", None, None, off=True)
    assert Policy.from_label("1:3:2.5:5") == Policy(1, 3, 2.5, 5)


def test_up_with_bad_bounds_is_one_line_and_exit_2() -> None:
    result = run_tcel("up", "--autoscale", "3:1")
    assert result.code == 2
    assert result.stderr.strip().splitlines()[0] == (
        "error: --autoscale needs 1 <= MIN <= MAX, not 3:1: such as --autoscale 1:4"
    )


def test_the_autoscalers_secrets_are_files_and_it_gets_the_docker_socket() -> None:
    access = credentials.generate()
    project = Project("demo", Path("/"))
    spec = specs.autoscaler(project, access, "tcel-metrics:abc", "1:3:2:5", "containers")
    assert spec.volumes == {"/var/run/docker.sock": "/var/run/docker.sock"}
    assert spec.command == ["python", "-m", "celery_cli.autoscaler"]
    assert spec.environment["TCEL_AUTOSCALE"] == "1:3:2:5" and spec.environment["TCEL_PROJECT"] == "demo"
    assert access.broker_password not in json.dumps(spec.environment)
    assert access.backend_password not in json.dumps(spec.environment)
    assert b"@broker:5672" in spec.files["/run/secrets/celery_broker_url"]
    assert spec.labels(project)[LABEL_AUTOSCALE] == "1:3:2:5"


class FakeRedis:
    def __init__(self) -> None:
        self.kept: dict[str, str] = {}

    def set(self, key: str, value: str, ex: int) -> None:
        self.kept[key] = value

    def get(self, key: str) -> str | None:
        return self.kept.get(key)


class FakeStore:
    def __init__(self) -> None:
        self.client = FakeRedis()

    def errors(self):
        from contextlib import nullcontext

        return nullcontext()


class FakeScaler:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def count(self) -> int:
        return self.workers

    def queues(self) -> list[str]:
        return ["celery"]

    def scale(self, target: int) -> list[str]:
        added = [f"tcel-demo-worker-{n}" for n in range(self.workers + 1, target + 1)]
        self.workers = target
        return added


def test_a_step_scales_logs_one_line_and_keeps_its_state_for_status(monkeypatch, capsys) -> None:
    from celery_cli.queues import QueueInfo

    monkeypatch.setattr(autoscaler, "queues", lambda access, names, timeout: [QueueInfo("celery", 30, 1)])
    scaler = FakeScaler(1)
    running = autoscaler.Autoscaler(Policy(1, 3, 2, 5), scaler, "amqp://u:p@broker:5672//", "redis://backend")
    store = FakeStore()
    running.store = store  # type: ignore[assignment]
    assert running.step().action == "hold"  # the first look above the threshold
    assert running.step().action == "up" and scaler.workers == 3
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        "autoscale up: 1 -> 3 workers: backlog 30/worker above 2 for 2 looks; added tcel-demo-worker-2, "
        "tcel-demo-worker-3"
    ]
    state = read(store)  # type: ignore[arg-type]
    assert state is not None and (state.current, state.target, state.ready, state.action) == (1, 3, 30, "up")
    assert state.last_change.startswith("1 -> 3 workers")


def test_status_shows_the_autoscalers_newest_decision() -> None:
    state = AutoscaleState("1:3:2:5", 2, 2, 0, "hold", "idle for 3s", 100.0, "1 -> 2 workers: ...", 90.0)
    store = FakeStore()
    write(store, state)  # type: ignore[arg-type]
    assert read(store) == state  # type: ignore[arg-type]
    view = Overview("demo", "containers", autoscale=state, taken_at=101.0)
    assert view.as_dict()["autoscale"]["target"] == 2
    shown = [str(part) for part in tables.overview(view)]
    assert any(
        text.startswith("autoscale: 1..3 workers: 2 running, target 2 (hold: idle for 3s), 1s ago; last change 11s")
        for text in shown
    ), shown


def test_the_policy_is_kept_for_the_next_up(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = Project("demo", tmp_path)
    credentials.save(project, credentials.generate(), {"TCEL_AUTOSCALE": "1:3:2:5"})
    assert credentials.kept(project)["TCEL_AUTOSCALE"] == "1:3:2:5"
    credentials.save(project, credentials.generate(), {"TCEL_AUTOSCALE": ""})  # --no-autoscale
    assert "TCEL_AUTOSCALE" not in credentials.kept(project)
