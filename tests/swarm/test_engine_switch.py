"""One engine per project at a time: `up --swarm` on a project whose plain-container stack runs is refused
before anything is made (a second broker would start on the same named volume, and the state file would forget
the running stack), and so is a `down` on Swarm that would remove nothing of it; the plain stack keeps working."""

from __future__ import annotations

import json

import pytest

from celery_cli.names import LABEL_PROJECT
from tests.conftest import make_project
from tests.swarm.conftest import Lab

pytestmark = pytest.mark.swarm


def test_up_swarm_is_refused_while_the_project_runs_as_plain_containers(lab: Lab, tmp_path):
    with make_project(lab.engine, tmp_path) as project:
        label = {"label": f"{LABEL_PROJECT}={project.name}"}
        try:
            up = project.tcel("up", "--workers", "1")
            assert up.code == 0, up.stderr
            # with TCEL_ENGINE=swarm in the environment, a bare `tcel down` would look on Swarm: the hint says so
            swarm_env = {"TCEL_ENGINE": "swarm"}
            for refused, down in (
                (project.tcel("up", "--swarm"), "tcel down"),
                (project.tcel("up", env=swarm_env), "TCEL_ENGINE=containers tcel down"),
            ):
                assert refused.code == 2, refused.stderr
                assert f"stack {project.name} runs as plain containers on this Docker engine" in refused.stderr
                assert f"run '{down}' first" in refused.stderr and "Traceback" not in refused.stderr
            assert lab.engine.services.list(filters=label) == []
            assert lab.engine.secrets.list(filters=label) == []
            # `down` on Swarm would remove nothing and leave the stack running: it is refused, naming the right one
            missed = project.tcel("down", "--volumes", env=swarm_env)
            assert missed.code == 2, missed.stderr
            assert "run 'TCEL_ENGINE=containers tcel down --volumes'" in missed.stderr, missed.stderr
            assert len(lab.engine.containers.list(filters=label)) == 3
            # the state file still says plain containers: a bare command finds the stack that runs
            added = project.tcel("add", "1", "2", "--wait", "--json")
            assert added.code == 0, added.stderr
            assert json.loads(added.stdout)["result"] == 3
            down = project.tcel("down", "--volumes")
            assert down.code == 0 and "3 container(s)" in down.stderr, down.stderr
        finally:
            project.tcel("down", "--volumes")
