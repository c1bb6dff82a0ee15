"""A Swarm stack's credentials outlive its state file, as plain containers' do (tests/integration/
test_credentials_survive.py): `up --swarm` keeps a copy of the file in a Swarm config, and without the file
recovers it from there, while the stack runs and after a `down` that keeps the data; the broker and backend
still take the same passwords and keep their data. A new text of the file replaces the copy, `down --volumes`
removes it, and data without a copy is refused."""

from __future__ import annotations

import base64

import pytest

from celery_cli import credentials
from celery_cli.names import LABEL_PROJECT, LABEL_SERVICE
from celery_cli.settings import resolve_project, setting
from tests.conftest import StackProject, make_project
from tests.swarm.conftest import Lab, swarm_lab

pytestmark = pytest.mark.swarm


def state_file(project: StackProject):
    return credentials.state_file(resolve_project(project.directory, project.name))


def copies(lab: Lab, project: StackProject) -> list:
    labels = [f"{LABEL_PROJECT}={project.name}", f"{LABEL_SERVICE}=state"]
    return lab.engine.configs.list(filters={"label": labels})


def recovered_up(lab: Lab, project: StackProject, step: str) -> None:
    """Lose the state file, then `up --swarm`: it says it recovered the file from the copy, by name."""
    names = [c.name for c in copies(lab, project)]
    state_file(project).unlink()
    up = project.tcel("up", "--swarm")
    assert up.code == 0, f"{step}: {up.stderr}"
    assert len(names) == 1, names
    assert f"credentials were recovered from the copy in Swarm config {names[0]}" in up.stderr, step


def test_a_lost_state_file_is_recovered_on_swarm_with_the_same_passwords_and_the_data(lab: Lab, tmp_path) -> None:
    loaded = swarm_lab("load", setting("TCEL_REGISTRY_IMAGE"))  # every node runs a registry mirror from it
    assert loaded.returncode == 0, loaded.stderr
    with make_project(lab.engine, tmp_path) as project:
        try:
            up = project.tcel("up", "--swarm", "--workers", "2")
            assert up.code == 0, up.stderr
            before = project.connection
            sent = project.tcel_json("add", "2", "3", "--wait")
            assert sent["result"] == 5

            # lost while the stack runs, then again after a down that keeps the data (and the copy)
            for step in ("running", "after down"):
                if step == "after down":
                    kept = [c.name for c in copies(lab, project)]
                    assert project.tcel("down").code == 0
                    assert [c.name for c in copies(lab, project)] == kept, "down keeps the copy with the data"
                recovered_up(lab, project, step)
                assert project.connection == before, step
                assert project.tcel_json("result", sent["id"])["result"] == 5, f"{step}: the stored result is kept"
                assert project.tcel("add", "4", "5", "--wait").stdout == "9\n", step

            # the copy holds the state file as it is, in no service; a new text replaces it
            (copy,) = copies(lab, project)
            held = lab.engine.configs.get(copy.id).attrs["Spec"]["Data"]
            assert base64.b64decode(held).decode() == state_file(project).read_text()
            assert copy.attrs["Spec"]["Labels"] == {LABEL_PROJECT: project.name, LABEL_SERVICE: "state"}
            services = lab.engine.services.list(filters={"label": f"{LABEL_PROJECT}={project.name}"})
            assert not any(s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Configs") for s in services)
            assert project.tcel("up", "--swarm", "--concurrency", "3").code == 0
            (newer,) = copies(lab, project)
            assert newer.name != copy.name and "TCEL_CONCURRENCY=3" in state_file(project).read_text()

            # data without a copy: refused, the stack left as it runs
            text = state_file(project).read_text()
            newer.remove()
            state_file(project).unlink()
            refused = project.tcel("up", "--swarm")
            assert refused.code == 1, refused.stderr
            last = refused.stderr.strip().splitlines()[-1]
            assert "is missing and the engine holds no copy of it" in last and "restore the file" in last
            assert f"tcel-{project.name}-broker" in last and "Traceback" not in refused.stderr
            assert not state_file(project).exists()
            assert len(lab.engine.services.list(filters={"label": f"{LABEL_PROJECT}={project.name}"})) == len(services)
            state_file(project).write_text(text)
        finally:
            down = project.tcel("down", "--volumes", env={"TCEL_ENGINE": "swarm"})
        assert down.code == 0, down.stderr
        assert copies(lab, project) == []
