"""A first `up --swarm` that fails or is interrupted before it has made the whole stack removes what it made
(services, network, secrets), as the plain-container `up` does: nothing is left for the user to find."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from celery_cli.names import LABEL_PROJECT
from tests.conftest import StackProject, make_project
from tests.swarm.conftest import Lab

pytestmark = pytest.mark.swarm


def leftovers(lab: Lab, name: str) -> dict[str, list[str]]:
    label = {"label": f"{LABEL_PROJECT}={name}"}
    return {
        "services": sorted(s.name for s in lab.engine.services.list(filters=label)),
        "networks": sorted(n.name for n in lab.engine.networks.list(filters=label)),
        "secrets": sorted(s.name for s in lab.engine.secrets.list(filters=label)),
    }


@contextmanager
def swarm_project(lab: Lab, directory) -> Iterator[StackProject]:
    """A project of the test's own; whatever the test leaves, a `down` on Swarm removes (make_project's clean-up
    knows containers, networks and volumes, not services or secrets)."""
    with make_project(lab.engine, directory) as project:
        try:
            yield project
        finally:
            project.tcel("down", "--volumes", env={"TCEL_ENGINE": "swarm"})


def test_a_push_that_fails_leaves_no_network_nor_tag(lab: Lab, tmp_path):
    with swarm_project(lab, tmp_path) as project:
        failed = project.tcel("up", "--swarm", "--registry", "127.0.0.1:1")  # nothing listens on port 1
        assert failed.code == 7, failed.stderr
        assert "cannot push the worker image to 127.0.0.1:1" in failed.stderr and "Traceback" not in failed.stderr
        assert leftovers(lab, project.name) == {"services": [], "networks": [], "secrets": []}
        assert lab.engine.images.list(name="127.0.0.1:1/tcel-worker") == []


def test_a_failed_first_up_forgets_that_it_chose_swarm(lab: Lab, tmp_path):
    """The project is not remembered as a Swarm project: a later bare command looks at plain containers (a
    plain `tcel up` no longer asks for a swarm manager)."""
    with swarm_project(lab, tmp_path) as project:
        failed = project.tcel("up", "--swarm", "--registry", "127.0.0.1:1")
        assert failed.code == 7, failed.stderr
        shown = project.tcel("status", "--json")
        assert json.loads(shown.stdout)["engine"] == "containers", shown.stdout


def test_ctrl_c_while_up_waits_for_its_registry_removes_the_services_it_made(lab: Lab, tmp_path):
    with swarm_project(lab, tmp_path) as project:
        label = {"label": f"{LABEL_PROJECT}={project.name}"}
        command = [sys.executable, "-m", "celery_cli", "up", "--swarm", "--project-name", project.name]
        running = subprocess.Popen(
            command,
            cwd=project.directory,
            env={**os.environ, **project.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            # the registry and its mirror exist; up waits for them (the mirror's healthcheck) before it pushes
            while not any(s.name.endswith("-registry-mirror") for s in lab.engine.services.list(filters=label)):
                assert running.poll() is None, running.communicate()
                assert time.monotonic() < deadline, "up made no registry mirror within 120 s"
                time.sleep(0.1)
            running.send_signal(signal.SIGINT)
            _, stderr = running.communicate(timeout=120)
        finally:
            if running.poll() is None:
                running.kill()
        assert running.returncode == 130, stderr
        assert "Traceback" not in stderr, stderr
        assert leftovers(lab, project.name) == {"services": [], "networks": [], "secrets": []}
