"""The autoscaler on Swarm (`tcel up --swarm --autoscale`) on the lab: a service on the manager with the Docker
socket, a burst of slow tasks raises the worker service's replicas, every task succeeds and runs once, and the
replicas go back to MIN after the cool-down; `down` removes it."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from celery_cli.names import LABEL_PROJECT, LABEL_SERVICE
from celery_cli.settings import setting
from tests.conftest import make_project, run_tcel
from tests.integration.test_autoscale import BURST, COOLDOWN, send_burst, wait_for
from tests.swarm.conftest import Lab, swarm_lab

pytestmark = pytest.mark.swarm


def replicas(lab: Lab, project_name: str, kind: str) -> int | None:
    found = lab.engine.services.list(filters={"label": f"{LABEL_PROJECT}={project_name}"})
    for service in found:
        if service.attrs["Spec"]["Labels"].get(LABEL_SERVICE) == kind:
            return int(service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"])
    return None


def test_a_burst_raises_the_worker_replicas_and_the_cool_down_lowers_them(lab: Lab, tmp_path) -> None:
    loaded = swarm_lab("load", setting("TCEL_REGISTRY_IMAGE"))
    assert loaded.returncode == 0, loaded.stderr
    with make_project(lab.engine, tmp_path) as project:
        made = run_tcel("init", str(project.directory))
        assert made.code == 0, made.stderr
        try:
            up = project.tcel("up", "--swarm", "--autoscale", "1:3", "--autoscale-threshold", "2",
                              "--autoscale-cooldown", str(COOLDOWN), "--concurrency", "2")  # fmt: skip
            assert up.code == 0, up.stderr
            assert replicas(lab, project.name, "autoscaler") == 1 and replicas(lab, project.name, "worker") == 1
            autoscaler = next(s for s in lab.engine.services.list() if s.name == f"tcel-{project.name}-autoscaler")
            access = project.connection
            assert access.broker_password not in json.dumps(autoscaler.attrs)  # Docker secrets

            results = send_burst(project, BURST)
            raised = wait_for(lambda: (replicas(lab, project.name, "worker") or 0) > 1, 60)
            assert raised, "the worker service was not scaled up"
            assert [r.get(timeout=180) for r in results] == [2 * i for i in range(BURST)]
            logged = project.tcel("logs", "worker").stdout
            ran = Counter(re.findall(r"Task tasks\.add\[([0-9a-f-]+)\] succeeded", logged))
            assert ran == Counter({r.id: 1 for r in results}), ran

            back = wait_for(lambda: replicas(lab, project.name, "worker") == 1, 120)
            tail = project.tcel("logs", "autoscaler", "--tail", "20").stdout
            assert back, f"{replicas(lab, project.name, 'worker')} replicas after the cool-down: {tail}"
            view = json.loads(project.tcel("status", "--json").stdout)
            assert view["autoscale"]["policy"].startswith("1:3:") and view["autoscale"]["current"] == 1
            assert "autoscale down:" in project.tcel("logs", "autoscaler").stdout
        finally:
            down = project.tcel("down", "--volumes")
            assert down.code == 0, down.stderr
        assert replicas(lab, project.name, "autoscaler") is None
