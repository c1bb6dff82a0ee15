"""The copies of the state file both engines keep, without an engine: the Swarm config's name and which copy is
read back, and what `up` does without a state file (recover and say so, refuse data without a copy, or start
afresh)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from celery_cli import credentials
from celery_cli.errors import TcelError
from celery_cli.settings import PROJECT_NAME_MAX, Project, resolve_project
from celery_cli.stack.state_recovery import Copy, recovered
from celery_cli.stack.swarm.docker_api import Config
from celery_cli.stack.swarm.state_copy import copy_name, newest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return resolve_project(tmp_path, "demo")


def saved_text(project: Project) -> str:
    credentials.save(project, credentials.generate(), {"TCEL_ENGINE": "swarm", "TCEL_DATA_NODE": "node-2"})
    text = credentials.state_text(project)
    assert text is not None
    credentials.state_file(project).unlink()
    return text


def test_a_copy_is_named_for_its_text_and_fits_swarms_64_characters() -> None:
    demo = Project("demo", Path("."))
    name = copy_name(demo, "TCEL_BROKER_PASSWORD=a\n")
    assert name.startswith("tcel-demo-state-") and len(name.rpartition("-")[2]) == 12
    assert copy_name(demo, "TCEL_BROKER_PASSWORD=a\n") == name
    assert copy_name(demo, "TCEL_BROKER_PASSWORD=b\n") != name
    assert copy_name(Project("p" * 30, Path(".")), "x") != copy_name(demo, "x")
    assert len(copy_name(Project("p" * PROJECT_NAME_MAX, Path(".")), "x")) <= 64


def test_the_newest_copy_is_the_one_made_last() -> None:
    def at(minute: int | None, name: str) -> Config:
        return Config(f"id-{name}", name, datetime(2026, 12, 6, 3, minute, tzinfo=UTC) if minute is not None else None)

    first, second, undated = at(1, "tcel-demo-state-b"), at(2, "tcel-demo-state-a"), at(None, "tcel-demo-state-c")
    assert newest([first, second, undated]) is second
    assert newest([undated, first]) is first
    assert newest([]) is None


def test_without_a_state_file_the_copy_is_written_back_and_up_says_so(project: Project) -> None:
    text = saved_text(project)
    found = recovered(project, ["tcel-demo-broker"], lambda: Copy(text, "Swarm config tcel-demo-state-0123"))
    assert found is not None
    assert credentials.state_text(project) == text
    assert stat.S_IMODE(credentials.state_file(project).stat().st_mode) == 0o600
    assert found.credentials == credentials.load(project)
    assert credentials.kept(project)["TCEL_DATA_NODE"] == "node-2"  # the data node comes back with it
    assert found.note == (
        f"the state file {credentials.state_file(project)} was missing: its credentials were recovered from the "
        "copy in Swarm config tcel-demo-state-0123"
    )


def test_a_copy_is_read_back_even_when_the_data_is_out_of_sight(project: Project) -> None:
    """After `down` on Swarm, the data volumes stay on the data node, which the manager cannot list."""
    text = saved_text(project)
    found = recovered(project, [], lambda: Copy(text, "Swarm config tcel-demo-state-0123"))
    assert found is not None and found.credentials == credentials.load(project)


def test_data_without_a_copy_is_refused_and_a_new_stack_starts_afresh(project: Project) -> None:
    with pytest.raises(TcelError) as refused:
        recovered(project, ["tcel-demo-broker", "tcel-demo-backend"], lambda: None)
    message = str(refused.value)
    assert "tcel-demo-broker, tcel-demo-backend" in message and "the engine holds no copy of it" in message
    assert "restore the file" in (refused.value.hint or "")
    assert recovered(project, [], lambda: None) is None
    assert credentials.state_text(project) is None


def test_a_copy_without_passwords_does_not_count(project: Project) -> None:
    with pytest.raises(TcelError, match="holds no copy"):
        recovered(project, ["tcel-demo-broker"], lambda: Copy("TCEL_ENGINE=swarm\n", "Swarm config x"))
    assert credentials.state_text(project) is None
